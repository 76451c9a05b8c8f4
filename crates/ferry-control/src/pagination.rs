//! Airbyte's `next`/`previous` links (its `PaginationMapper`): `next` whenever the page is
//! not empty, `""` when it is; `previous` `""` on the first page.

use axum::http::HeaderMap;
use axum::http::header::HOST;

use crate::AppState;
use crate::extract::Page;

pub struct Links {
    pub next: String,
    pub previous: String,
}

pub fn links(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    filters: &[(String, String)],
    page: Page,
    returned: usize,
) -> Links {
    let base = match &state.config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(HOST)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    };
    let link = |offset: i64| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in filters {
            query.append_pair(key, value);
        }
        query.append_pair("limit", &page.limit.to_string());
        query.append_pair("offset", &offset.to_string());
        format!("{base}{path}?{}", query.finish())
    };
    Links {
        next: if returned == 0 {
            String::new()
        } else {
            link(page.offset + page.limit)
        },
        previous: if page.offset == 0 {
            String::new()
        } else {
            link((page.offset - page.limit).max(0))
        },
    }
}
