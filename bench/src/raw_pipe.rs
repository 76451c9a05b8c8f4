//! The raw COPY pipes the sync benchmark measures Ferry against: `psql \copy … to stdout`
//! piped into `psql \copy … from stdin`, between the same two databases, as shell scripts
//! for [`crate::timed_shell`].

/// The columns of the benchmark's `events` table, in the order every pipe copies them.
const EVENTS_COLUMNS: &str =
    "id, user_id, event_type, amount, payload, created_at, updated_at, note";

/// Pipes from `events` in one database into a table of another.
pub struct RawPipe {
    source: String,
    destination: String,
}

impl RawPipe {
    pub fn new(source_url: String, destination_url: String) -> Self {
        Self {
            source: source_url,
            destination: destination_url,
        }
    }

    /// All of `events` into `table` (emptied first), in COPY text (`format` empty) or the
    /// options `format` gives (`with (format binary)`).
    pub fn copy_into(&self, table: &str, format: &str) -> String {
        self.script(table, &[self.lane("events", table, format)])
    }

    /// The same in binary, in two concurrent lanes, each half of the source table's
    /// `pages` (as Ferry's two parallel readers cut them).
    pub fn copy_into_two_lanes(&self, table: &str, pages: i64) -> String {
        let half = pages / 2;
        let lanes = [
            format!("(SELECT * FROM events WHERE ctid < '({half},0)'::tid)"),
            format!("(SELECT * FROM events WHERE ctid >= '({half},0)'::tid)"),
        ];
        let lanes: Vec<String> = lanes
            .iter()
            .map(|rows| self.lane(rows, table, "with (format binary)"))
            .collect();
        self.script(table, &lanes)
    }

    /// One pipe: `rows` (a table or a parenthesised query) out of the source, into `table`.
    fn lane(&self, rows: &str, table: &str, format: &str) -> String {
        format!(
            "psql -X -q '{}' -c \"\\copy {rows} to stdout {format}\" | psql -X -q '{}' -c '\\copy {table} ({EVENTS_COLUMNS}) from stdin {format}'",
            self.source, self.destination
        )
    }

    /// Empties `table`, then runs the lanes at once and waits for each (a failed lane fails
    /// the script).
    fn script(&self, table: &str, lanes: &[String]) -> String {
        // Without TLS, as Ferry's connections in the benchmark (`ssl_mode: disable`): psql
        // would otherwise encrypt both hops (the server has `ssl = on`).
        let mut script = format!(
            "export PGSSLMODE=disable; psql -X -q '{}' -c 'TRUNCATE {table}';",
            self.destination
        );
        if let [lane] = lanes {
            script.push_str(&format!(" {lane}"));
            return script;
        }
        for (index, lane) in lanes.iter().enumerate() {
            script.push_str(&format!(" ( {lane} ) & lane_{index}=$!;"));
        }
        for index in 0..lanes.len() {
            script.push_str(&format!(" wait $lane_{index};"));
        }
        script
    }
}
