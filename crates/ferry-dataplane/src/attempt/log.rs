//! An attempt's log, collected while it runs and stored when it ends.

use tokio::sync::mpsc;

/// The most an attempt's log keeps; past it, lines are counted, not kept.
const MAX_LOG_BYTES: usize = 16 * 1024 * 1024;

pub(super) async fn collect_log(mut lines: mpsc::UnboundedReceiver<String>) -> String {
    let mut text = String::new();
    let mut dropped = 0u64;
    while let Some(line) = lines.recv().await {
        if text.len() + line.len() > MAX_LOG_BYTES {
            dropped += 1;
            continue;
        }
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        text.push_str(&now);
        text.push(' ');
        text.push_str(&line);
        text.push('\n');
    }
    if dropped > 0 {
        text.push_str(&format!(
            "... {dropped} more lines not kept (log over {MAX_LOG_BYTES} bytes)\n"
        ));
    }
    text
}
