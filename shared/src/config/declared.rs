//! Every variable the product documents, declared once: its name, its
//! component, what it takes (its default and range) and what it means.
//! [`crate::config`] reads each through its declaration, the numeric
//! settings' `Default` impls come from the declared defaults, and a test
//! checks the README's configuration tables against [`SETTINGS`], row by row.

/// The component a setting belongs to: one table of the README each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    /// MongoDB ([`crate::config::MongoSettings`]).
    Mongo,
    /// Flink's REST API ([`crate::config::FlinkSettings`]).
    Flink,
    /// The Kubernetes API ([`crate::config::KubeSettings`]).
    Kube,
    /// The sync run ([`crate::config::SyncSettings`]).
    Sync,
    /// The sync rule ([`crate::rules::plan::SyncRules`]).
    SyncRule,
    /// The cleanup rule ([`crate::rules::cleanup::CleanupRules`]).
    CleanupRule,
    /// The health rule ([`crate::rules::health::HealthRules`]).
    HealthRule,
    /// EventBridge ([`crate::config::EventSettings`]).
    Events,
    /// Logging, read by [`crate::reporting::telemetry`].
    Logging,
}

impl Component {
    /// The line above the component's table in the README.
    pub fn heading(self) -> &'static str {
        match self {
            Component::Mongo => "**MongoDB** (`MongoSettings`, taken by `adapters::store`):",
            Component::Flink => "**Flink** (`FlinkSettings`, taken by `adapters::flink`):",
            Component::Kube => "**Kubernetes** (`KubeSettings`, taken by `adapters::k8s`):",
            Component::Sync => "**The sync run** (`SyncSettings`, taken by `runs::sync`):",
            Component::SyncRule => {
                "**The sync rule** (`SyncRules`, taken by `rules::plan::decide`):"
            }
            Component::CleanupRule => {
                "**The cleanup rule** (`CleanupRules`, taken by `rules::cleanup::decide`):"
            }
            Component::HealthRule => "**The health rule** (`HealthRules`, part of `SyncRules`):",
            Component::Events => "**Events** (`EventSettings`, taken by `adapters::events`):",
            Component::Logging => "**Logging** (read by `reporting::telemetry`):",
        }
    }
}

/// A whole number in `min..=max`, `default` when unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number {
    /// The value when the variable is unset.
    pub default: u64,
    /// The least value accepted.
    pub min: u64,
    /// The greatest value accepted.
    pub max: u64,
}

impl Number {
    /// A number setting; a default outside its range fails the build.
    pub const fn new(default: u64, min: u64, max: u64) -> Number {
        assert!(
            min <= default && default <= max,
            "a default outside its range"
        );
        Number { default, min, max }
    }
    const fn into_kind(self) -> Kind {
        Kind::Number(self)
    }
}

/// Text, `default` when unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text {
    /// The value when the variable is unset.
    pub default: &'static str,
}

impl Text {
    /// A text setting.
    pub const fn new(default: &'static str) -> Text {
        Text { default }
    }
    const fn into_kind(self) -> Kind {
        Kind::Text(self)
    }
}

/// `true` or `false`; `false` when unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag;

impl Flag {
    const fn into_kind(self) -> Kind {
        Kind::Flag(self)
    }
}

/// A value with no default: unset means none, or, for a value a binary
/// needs, an error when that binary reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Optional {
    /// What the variable's absence means, as the README's default column says it.
    pub unset: &'static str,
}

impl Optional {
    /// Unset means none.
    pub const UNSET: Optional = Optional { unset: "unset" };
    /// A value whose absence means `unset` (say, "required by sync").
    pub const fn new(unset: &'static str) -> Optional {
        Optional { unset }
    }
    const fn into_kind(self) -> Kind {
        Kind::Optional(self)
    }
}

/// A variable another library reads (the Kubernetes client, the log
/// filter), documented with the others; config never reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elsewhere {
    /// What its absence means, as the README's default column says it.
    pub default: &'static str,
}

impl Elsewhere {
    /// A variable read by another library.
    pub const fn new(default: &'static str) -> Elsewhere {
        Elsewhere { default }
    }
    const fn into_kind(self) -> Kind {
        Kind::Elsewhere(self)
    }
}

/// What a setting takes, whichever kind it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number in a range.
    Number(Number),
    /// Text with a default.
    Text(Text),
    /// `true` or `false`.
    Flag(Flag),
    /// A value with no default.
    Optional(Optional),
    /// Read by another library.
    Elsewhere(Elsewhere),
}

/// One variable: its name, its component, what it takes (`K`: one of the
/// kinds above, or any [`Kind`] in [`SETTINGS`]) and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting<K = Kind> {
    /// The variable's name.
    pub name: &'static str,
    /// The component whose settings it is part of.
    pub component: Component,
    /// Its default and range.
    pub kind: K,
    /// What it means, the README's `meaning` column without the range; one
    /// line of Markdown per source line.
    pub doc: &'static str,
}

impl Setting {
    /// The README's `default` column.
    pub fn default_cell(&self) -> String {
        match self.kind {
            Kind::Number(n) => format!("`{}`", n.default),
            Kind::Text(t) => format!("`{}`", t.default),
            Kind::Flag(Flag) => "`false`".to_string(),
            Kind::Optional(o) => o.unset.to_string(),
            Kind::Elsewhere(e) => e.default.to_string(),
        }
    }

    /// The README's `meaning` column: the doc on one line, then the range
    /// in parentheses for a number.
    pub fn meaning(&self) -> String {
        let doc: Vec<&str> = self
            .doc
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let doc = doc.join(" ");
        match self.kind {
            Kind::Number(n) => format!("{doc} ({} to {})", n.min, n.max),
            _ => doc,
        }
    }

    /// Read by config (every kind but [`Elsewhere`]).
    pub fn read_by_config(&self) -> bool {
        !matches!(self.kind, Kind::Elsewhere(_))
    }
}

/// Declares each setting as a `const` of its kind (named as its variable)
/// and lists them all in [`SETTINGS`]: adding a setting is one entry here.
macro_rules! declare {
    ($(
        $component:ident {
            $( $(#[doc = $doc:literal])+ $name:ident: $kind:ident = $value:expr; )*
        }
    )*) => {
        $($(
            $(#[doc = $doc])+
            pub const $name: Setting<$kind> = Setting {
                name: stringify!($name),
                component: Component::$component,
                kind: $value,
                doc: concat!($($doc, "\n"),+),
            };
        )*)*

        /// Every variable the README documents, config's and the others', by component.
        pub const SETTINGS: &[Setting] = &[$($(
            Setting {
                name: $name.name,
                component: $name.component,
                kind: $name.kind.into_kind(),
                doc: $name.doc,
            },
        )*)*];
    };
}

/// A year, the longest grace or window, in seconds.
const YEAR_SECONDS: u64 = 366 * 24 * 3600;

/// Ten years, the longest cleanup age, in hours.
const TEN_YEARS_HOURS: u64 = 87_600;

/// The shortest request timeout, in milliseconds.
const TIMEOUT_MIN_MS: u64 = 100;

/// The longest request timeout (ten minutes), in milliseconds.
const TIMEOUT_MAX_MS: u64 = 600_000;

declare! {
    Mongo {
        /// MongoDB connection string (a secret: never logged)
        MONGODB_URI: Optional = Optional::new("required unless `MONGODB_URI_SECRET_ARN`");
        /// Secrets Manager secret holding the URI, read at cold start (deployed functions)
        MONGODB_URI_SECRET_ARN: Optional = Optional::UNSET;
        /// database
        MONGODB_DATABASE: Text = Text::new("lemo_recommender");
        /// the records
        MONGODB_COLLECTION: Text = Text::new("flink_jobs");
        /// one document per sync run
        MONGODB_RUNS_COLLECTION: Text = Text::new("flink_job_sync_runs");
    }
    Flink {
        /// JobManager REST endpoint, e.g. `http://flink-jobmanager:8081`
        FLINK_REST_URL: Optional = Optional::new("required by sync, unless `FLINK_CLUSTERS`");
        /// History Server, asked before a job is called missing
        FLINK_HISTORY_URL: Optional = Optional::UNSET;
        /// per Flink request
        FLINK_TIMEOUT_MS: Number = Number::new(5000, TIMEOUT_MIN_MS, TIMEOUT_MAX_MS);
        /// more Flink clusters, as JSON: `{"prod": {"rest_url": "http://prod-jm:8081",
        /// "history_url": "http://prod-hs:8082"}, "batch": {"rest_url": "..."}}`
        /// (`history_url` optional; names are 1 to 63 lowercase letters, digits, `-` or `_`,
        /// and not `default`). A record names its cluster in `flink_cluster`; records
        /// without one use `FLINK_REST_URL`, which is then optional. A record naming a
        /// cluster not listed gets a `sync_error` that names it and the known ones, and is
        /// never failed for it. The template's `FlinkClusters` parameter sets it
        FLINK_CLUSTERS: Optional = Optional::UNSET;
        /// `true` accepts any certificate from an https Flink (self-signed JobManager);
        /// logged as a warning. Kubernetes follows the kubeconfig (`insecure-skip-tls-verify`
        /// is warned of) and MongoDB its URI (`tlsInsecure` is warned of); all verify by
        /// default
        FLINK_TLS_INSECURE: Flag = Flag;
    }
    Kube {
        /// Kubernetes credentials
        KUBECONFIG: Elsewhere = Elsewhere::new("`~/.kube/config`, else in-cluster");
        /// Secrets Manager secret holding a kubeconfig, read at cold start
        KUBECONFIG_SECRET_ARN: Optional = Optional::UNSET;
        /// namespace of records without `k8s_namespace`
        K8S_NAMESPACE: Text = Text::new("lemo-dev");
        /// label selector of the product's Jobs and pods
        K8S_JOB_SELECTOR: Text = Text::new("app=flink-python-job");
        /// per Kubernetes request
        K8S_TIMEOUT_MS: Number = Number::new(10_000, TIMEOUT_MIN_MS, TIMEOUT_MAX_MS);
        /// lines read of a pod log (its tail)
        LOG_TAIL_LINES: Number = Number::new(500, 1, 100_000);
        /// bytes read of a pod log at most
        LOG_LIMIT_BYTES: Number = Number::new(256 * 1024, 1024, 16 * 1024 * 1024);
        /// parallel log reads, and parallel Flink look-ups of the sync run
        /// (`SyncSettings.concurrency`)
        LOG_CONCURRENCY: Number = Number::new(8, 1, 64);
    }
    Sync {
        /// records observed and written together; near the Lambda deadline (80 % of its
        /// time) no new chunk starts, the run is recorded as `partial` with `resume_after`,
        /// and the next run resumes there
        SYNC_CHUNK_SIZE: Number = Number::new(1000, 1, 100_000);
        /// entries kept in `status_history`
        STATUS_HISTORY_MAX: Number = Number::new(50, 1, 1000);
    }
    SyncRule {
        /// how long a record may wait for its Kubernetes Job to appear
        JOB_NOT_FOUND_GRACE_SECONDS: Number = Number::new(600, 0, YEAR_SECONDS);
        /// how long a pod may sit in ImagePullBackOff / ErrImagePull / InvalidImageName /
        /// CreateContainerConfigError
        POD_WAITING_GRACE_SECONDS: Number = Number::new(300, 0, YEAR_SECONDS);
        /// consecutive trusted misses before FAILED "not found on Flink cluster"
        FLINK_MISSING_THRESHOLD: Number = Number::new(3, 1, 1000);
        /// bound of `status_reason` and `sync_error`
        STATUS_REASON_MAX_BYTES: Number = Number::new(2048, 64, 64 * 1024);
    }
    CleanupRule {
        /// cleanup: a finished Job is deleted this long after it finished
        CLEANUP_MIN_AGE_HOURS: Number = Number::new(24, 0, TEN_YEARS_HOURS);
        /// cleanup: a Job whose record still waits for its JobID is kept at most this long
        CLEANUP_MAX_EVIDENCE_AGE_HOURS: Number = Number::new(168, 1, TEN_YEARS_HOURS);
    }
    HealthRule {
        /// running jobs whose health one run looks at, never-checked then oldest-checked
        /// first; at 0, only jobs that just ended
        HEALTH_BUDGET: Number = Number::new(200, 0, 100_000);
        /// restarts within the window that make a `restart_loop`
        HEALTH_RESTARTS_MIN: Number = Number::new(3, 1, 1_000_000);
        /// the restart window
        HEALTH_RESTART_WINDOW_SECONDS: Number = Number::new(900, 1, YEAR_SECONDS);
        /// the last completed checkpoint may be this many intervals old
        HEALTH_CHECKPOINT_AGE_FACTOR: Number = Number::new(3, 1, 1000);
        /// how long tasks may be not all running, or a job starting
        HEALTH_TASKS_GRACE_SECONDS: Number = Number::new(300, 0, YEAR_SECONDS);
    }
    Events {
        /// EventBridge bus for state-change events (none are sent without it)
        EVENT_BUS_NAME: Optional = Optional::UNSET;
        /// their `source`
        EVENT_SOURCE: Text = Text::new("flink-job-sync");
    }
    Logging {
        /// log level; logs are JSON lines in Lambda
        RUST_LOG: Elsewhere = Elsewhere::new("`info`");
        /// `json` gives JSON lines outside Lambda too
        LOG_FORMAT: Elsewhere = Elsewhere::new("unset");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = include_str!("../../../README.md");

    fn setting(name: &str) -> &'static Setting {
        SETTINGS
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} is not declared"))
    }

    /// One row of a configuration table of the README, with the line above its table.
    struct Row<'a> {
        heading: &'a str,
        name: &'a str,
        default: &'a str,
        meaning: &'a str,
    }

    /// The rows of the tables in the README's configuration section.
    fn rows(readme: &str) -> Vec<Row<'_>> {
        let section = readme
            .split("\n## Configuration (environment of the functions)\n")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap_or_else(|| panic!("the README has no configuration section"));
        let mut heading = "";
        let mut rows = Vec::new();
        for line in section.lines() {
            if line.starts_with("**") {
                heading = line;
            }
            let Some(row) = line.strip_prefix("| `") else {
                continue;
            };
            let cells: Vec<&str> = row.trim_end_matches(" |").splitn(3, " | ").collect();
            let [name, default, meaning] = cells[..] else {
                panic!("a README row of three cells: {line}");
            };
            rows.push(Row {
                heading,
                name: name.trim_end_matches('`'),
                default,
                meaning,
            });
        }
        rows
    }

    /// Where the README's tables and the declarations disagree, each
    /// naming its variable.
    fn disagreements(readme: &str) -> Vec<String> {
        let rows = rows(readme);
        let mut wrong = Vec::new();
        for s in SETTINGS {
            let expected = format!("| `{}` | {} | {} |", s.name, s.default_cell(), s.meaning());
            let found: Vec<&Row> = rows.iter().filter(|r| r.name == s.name).collect();
            let [row] = found[..] else {
                wrong.push(format!(
                    "{}: in {} rows of the README's tables, not one under {:?}; its row: {expected}",
                    s.name,
                    found.len(),
                    s.component.heading()
                ));
                continue;
            };
            for (what, readme, declared) in [
                (
                    "table",
                    row.heading.to_string(),
                    s.component.heading().to_string(),
                ),
                ("default", row.default.to_string(), s.default_cell()),
                ("meaning", row.meaning.to_string(), s.meaning()),
            ] {
                if readme != declared {
                    wrong.push(format!(
                        "{}: the README's {what} is {readme:?}, the declaration's {declared:?}; its row: {expected}",
                        s.name
                    ));
                }
            }
        }
        for row in &rows {
            if !SETTINGS.iter().any(|s| s.name == row.name) {
                wrong.push(format!(
                    "{}: in the README's tables, and not declared in config::declared",
                    row.name
                ));
            }
        }
        wrong
    }

    #[test]
    fn the_readme_tables_agree_with_the_declarations() {
        let wrong = disagreements(README);
        assert!(
            wrong.is_empty(),
            "the README's configuration tables disagree with config::declared \
             (the declarations are the truth):\n{}",
            wrong.join("\n")
        );
        assert_eq!(rows(README).len(), SETTINGS.len());
    }

    #[test]
    fn a_readme_row_that_disagrees_is_named_by_the_check() {
        let row = format!(
            "| `SYNC_CHUNK_SIZE` | `1000` | {} |",
            setting("SYNC_CHUNK_SIZE").meaning()
        );
        assert!(README.contains(&row), "the README has {row}");
        let other_default = README.replace(&row, &row.replace("`1000`", "`999`"));
        let wrong = disagreements(&other_default);
        assert_eq!(wrong.len(), 1, "{wrong:?}");
        assert!(
            wrong[0].starts_with("SYNC_CHUNK_SIZE: the README's default is \"`999`\""),
            "{wrong:?}"
        );
        let undeclared = README.replace(&row, &format!("{row}\n| `SYNC_CONCURRENCY` | `8` | x |"));
        assert_eq!(
            disagreements(&undeclared),
            ["SYNC_CONCURRENCY: in the README's tables, and not declared in config::declared"]
        );
        let missing = README.replace(&format!("{row}\n"), "");
        let wrong = disagreements(&missing);
        assert!(
            wrong.len() == 1 && wrong[0].starts_with("SYNC_CHUNK_SIZE: in 0 rows"),
            "{wrong:?}"
        );
    }

    #[test]
    fn a_number_is_documented_with_its_range_and_default() {
        let s = setting("LOG_CONCURRENCY");
        assert_eq!(s.default_cell(), "`8`");
        assert!(
            s.meaning()
                .ends_with("(`SyncSettings.concurrency`) (1 to 64)"),
            "{}",
            s.meaning()
        );
        assert_eq!(setting("FLINK_TLS_INSECURE").default_cell(), "`false`");
        assert!(!setting("KUBECONFIG").read_by_config());
    }
}
