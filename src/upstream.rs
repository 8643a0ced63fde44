//! Answering as the upstream plugins: `ecr-credential-provider`, `auth-provider-gcp` (and
//! `gcr-credential-provider`, `gcp-credential-provider`) and `acr-credential-provider`.
//!
//! An operator replaces the upstream binary with this one (a copy or a symlink under the
//! upstream name) and changes nothing else. Then:
//!
//! * **Run under an upstream name** (the file name executed, `.exe` ignored), the whole
//!   command line is that plugin's ([`keyring_api::upstream::parse`] against the backend's
//!   `PLUGIN` table), this program's own settings come only from their environment
//!   variables (`KUBELET_KEYRING_*`), the chain is that plugin's backend alone (unless the
//!   plugin config file lists `backends`), and the backend applies upstream's defaults
//!   (`<backend>::upstream::configure` with `as_upstream`).
//! * **Run under its own name**, the upstream flags are accepted too, mixed with this
//!   program's: `kubelet-keyring get-credentials --v=3`, `kubelet-keyring
//!   /etc/kubernetes/azure.json --registry-mirror=...`. [`split`] takes out every argument
//!   an upstream plugin knows (and a path-like positional, the ACR cloud config); the rest
//!   goes to the normal command line. Every backend applies the flags it knows, without
//!   upstream's defaults.
//!
//! Flags whose fate is `warned` each get one warning line on stderr; `refused` ones fail the
//! command line with exit 2. The upstream arguments and the environment variables the
//! backends' tables name are part of the cache context, so a changed flag never serves an
//! answer made under the old one.

use keyring_api::upstream::{self, Fate, Flag, Parsed, Plugin, Positionals, Takes};
use keyring_api::BackendError;
use keyring_kubelet_config::{traps, Severity};

/// The upstream plugins this build can answer for, with their backends.
pub fn plugins() -> Vec<&'static Plugin> {
    crate::backends::all()
        .iter()
        .filter_map(|b| b.upstream)
        .collect()
}

/// The plugin whose name `argv0` (a path) has, if any.
pub fn persona(argv0: &std::ffi::OsStr) -> Option<&'static Plugin> {
    let name = std::path::Path::new(argv0).file_name()?.to_str()?;
    plugins().into_iter().find(|p| p.answers_to(name))
}

/// What the command line asked of the upstream surface.
#[derive(Debug, Clone, Default)]
pub struct Upstream {
    /// The plugin this process runs as, when executed under an upstream name.
    pub persona: Option<&'static Plugin>,
    /// The upstream flags and positionals given.
    pub parsed: Parsed,
    /// The arguments as given, for the cache context.
    pub args: Vec<String>,
}

impl Upstream {
    /// Whether anything upstream was given or implied.
    pub fn is_empty(&self) -> bool {
        self.persona.is_none() && self.args.is_empty()
    }

    /// The `-v` count that `--v=N` asks for.
    pub fn verbosity(&self) -> Result<u8, BackendError> {
        let plugin = self.persona.unwrap_or(&OWN_NAME);
        upstream::verbosity(&self.parsed, plugin)
    }

    /// Bytes for the cache context: the persona and the arguments. The variables the
    /// plugins read need no place here: every one that can change an answer is in its
    /// backend's `cache_env` ([`keyring_api::BackendInfo`]), which the cache hashes on every run.
    pub fn context(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        out.extend_from_slice(b"upstream\0");
        if let Some(p) = self.persona {
            out.extend_from_slice(p.names[0].as_bytes());
        }
        for a in &self.args {
            out.push(0);
            out.extend_from_slice(a.as_bytes());
        }
        out
    }

    /// The plugins whose flags apply: the persona's, or every one under the own name.
    pub fn active(&self) -> Vec<&'static Plugin> {
        match self.persona {
            Some(p) => vec![p],
            None => plugins(),
        }
    }

    /// One warning line per warned flag and per set variable whose fate is warned; an error
    /// for a set variable whose fate is refused.
    pub fn warnings(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, BackendError> {
        let mut out = Vec::new();
        for f in self.parsed.warned() {
            out.push(format!("--{} is accepted and ignored: {}", f.long, f.note));
        }
        if self.persona.is_some() {
            for p in self.active() {
                // A prefix entry (`AWS_*`) describes a family; only named variables are
                // looked up here.
                for v in p
                    .env
                    .iter()
                    .filter(|v| !v.name.ends_with('*') && env(v.name).is_some())
                {
                    match v.fate {
                        Fate::Warned => {
                            out.push(format!("{} is set and ignored: {}", v.name, v.note))
                        }
                        Fate::Refused => {
                            return Err(BackendError::misconfigured(
                                p.backend,
                                format!("{} is not supported: {}", v.name, v.note),
                            ))
                        }
                        Fate::Honoured => {}
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The upstream flags this program takes under its own name: every plugin's own flags
/// except `--help`/`--version` (its own), and klog's.
static OWN_NAME: Plugin = Plugin {
    backend: "kubelet-keyring",
    names: &["kubelet-keyring"],
    flags: &[],
    klog: upstream::Klog::None,
    env: &[],
    positionals: Positionals::Ignored,
    differences: &[],
};

fn own_name_flag(name: &str) -> Option<&'static Flag> {
    if matches!(name, "help" | "version") {
        return None;
    }
    plugins()
        .into_iter()
        .find_map(|p| p.flags.iter().find(|f| f.long == name))
        .or_else(|| OWN_NAME.flag(name))
}

/// Whether `arg` is a path, which under the own name can only be the ACR cloud config (no
/// subcommand has a `/`).
fn path_like(arg: &str) -> bool {
    arg.contains('/') || arg.contains('\\')
}

/// Splits an own-name command line into this program's arguments and the upstream ones.
/// `None` when there are no upstream ones: the command line is left entirely to the normal
/// parser. Flags of this program keep their meaning: `-v` is its own verbosity, `--v=N`
/// (or `-v=N`) klog's. `takes_value` says which arguments are this program's flags whose
/// value follows apart (the table of `args`, passed in because `args` imports this module).
pub fn split(
    argv: &[String],
    takes_value: impl Fn(&str) -> bool,
) -> Option<(Vec<String>, Vec<String>)> {
    let mut own = Vec::new();
    let mut theirs = Vec::new();
    let mut args = argv.iter();
    // The first bare word is this program's subcommand; only `get-credentials` (the default)
    // takes no file of its own, so only there is a path the ACR cloud config.
    let mut command: Option<&str> = None;
    while let Some(arg) = args.next() {
        // The values of this program's own valued flags are not looked at.
        if takes_value(arg) {
            own.push(arg.clone());
            own.extend(args.next().cloned());
            continue;
        }
        let long = arg.strip_prefix("--").or_else(|| {
            arg.strip_prefix('-')
                .filter(|a| a.len() > 1 && a.contains('='))
        });
        let flag = long.and_then(|l| own_name_flag(l.split('=').next().unwrap_or_default()));
        match flag {
            Some(f) if arg.contains('=') || f.takes == Takes::Bool => theirs.push(arg.clone()),
            Some(_) => {
                theirs.push(arg.clone());
                theirs.extend(args.next().cloned());
            }
            None if path_like(arg)
                && !arg.starts_with('-')
                && matches!(command, None | Some("get-credentials")) =>
            {
                theirs.push(arg.clone())
            }
            None => {
                if command.is_none() && !arg.starts_with('-') {
                    command = Some(arg);
                }
                own.push(arg.clone());
            }
        }
    }
    (!theirs.is_empty()).then_some((own, theirs))
}

/// Parses the upstream part of an own-name command line.
pub fn parse_own_name(theirs: &[String]) -> Result<Parsed, BackendError> {
    // A table of every plugin's flags, built once for this process.
    static FLAGS: std::sync::OnceLock<Vec<Flag>> = std::sync::OnceLock::new();
    let flags = FLAGS.get_or_init(|| {
        plugins()
            .into_iter()
            .flat_map(|p| p.flags.iter().copied())
            .filter(|f| !matches!(f.long, "help" | "version"))
            .collect()
    });
    let plugin = Plugin { flags, ..OWN_NAME };
    let parsed = upstream::parse(&plugin, theirs)?;
    if parsed.positionals.len() > 1 {
        return Err(BackendError::misconfigured(
            "kubelet-keyring",
            "more than one file path among the arguments; at most one (an ACR cloud config) is taken",
        ));
    }
    Ok(parsed)
}

/// What `validate-config` says about a provider entry whose `name` is an upstream plugin's
/// (`plugin`), for when this binary answers to that name: a warning for each argument or
/// variable it refuses (every pull through the entry would fail), and notes for what it
/// honours, what it accepts with a warning line, and what it does differently.
pub fn swap_report(plugin: &Plugin, entry: &traps::Entry<'_>) -> Vec<traps::Warning> {
    let who = format!("as {} (backend {})", entry.name, plugin.backend);
    let mut out = Vec::new();
    let mut say = |severity, field: Option<&str>, message: String| {
        out.push(traps::Warning {
            severity,
            provider: None,
            field: field.map(str::to_string),
            message,
        })
    };
    match upstream::parse(plugin, entry.args) {
        Err(e) => say(
            Severity::Warning,
            Some("args"),
            format!(
                "kubelet-keyring {who} refuses these args, so every pull through this entry \
                 would fail: {}",
                e.message
            ),
        ),
        Ok(parsed) => {
            let mut taken: Vec<String> = Vec::new();
            for g in parsed
                .flags
                .iter()
                .filter(|g| g.flag.fate == Fate::Honoured)
            {
                let n = format!("--{} ({})", g.flag.long, g.flag.note);
                if !taken.contains(&n) {
                    taken.push(n);
                }
            }
            let words = || {
                let quoted: Vec<String> = parsed
                    .positionals
                    .iter()
                    .map(|p| format!("{p:?}"))
                    .collect();
                quoted.join(" ")
            };
            match plugin.positionals {
                _ if parsed.positionals.is_empty() => {}
                Positionals::Ignored => say(
                    Severity::Note,
                    Some("args"),
                    format!(
                        "kubelet-keyring {who} ignores {}, as upstream does",
                        words()
                    ),
                ),
                Positionals::Subcommand(_) => taken.push(words()),
                Positionals::OneFile => {
                    taken.push(format!("{} (the cloud config, read on each call)", words()))
                }
            }
            if !taken.is_empty() {
                say(
                    Severity::Note,
                    Some("args"),
                    format!("kubelet-keyring {who} honours {}", taken.join(", ")),
                );
            }
            for f in parsed.warned() {
                say(
                    Severity::Note,
                    Some("args"),
                    format!(
                        "kubelet-keyring {who} accepts --{} with a warning line on stderr: {}",
                        f.long, f.note
                    ),
                );
            }
        }
    }
    for name in &entry.env {
        let Some(v) = plugin
            .env
            .iter()
            .find(|v| upstream::env_covers(v.name, name))
        else {
            continue;
        };
        match v.fate {
            Fate::Refused => say(
                Severity::Warning,
                Some("env"),
                format!(
                    "kubelet-keyring {who} refuses {name}, so every pull through this entry \
                     would fail: {}",
                    v.note
                ),
            ),
            Fate::Warned => say(
                Severity::Note,
                Some("env"),
                format!(
                    "kubelet-keyring {who} ignores {name} with a warning line: {}",
                    v.note
                ),
            ),
            Fate::Honoured => say(
                Severity::Note,
                Some("env"),
                format!("kubelet-keyring {who} honours {name}: {}", v.note),
            ),
        }
    }
    for d in plugin.differences {
        say(
            Severity::Note,
            None,
            format!("kubelet-keyring {who} differs: {d}"),
        );
    }
    out
}

/// The usage text under an upstream name, from its table: every flag with its fate.
pub fn usage(plugin: &Plugin, name: &str) -> String {
    let mut out = format!(
        "{name} (kubelet-keyring {} answering as {}; see docs/migrating.md)\n\nUsage: {name} {}[flags]\n\nFlags:\n",
        env!("CARGO_PKG_VERSION"),
        plugin.names[0],
        match plugin.positionals {
            Positionals::Subcommand(w) => format!("{w} "),
            Positionals::OneFile => "<cloud-config-file> ".into(),
            Positionals::Ignored => String::new(),
        }
    );
    // klog's flags as the Go program registers them; the others are accepted too.
    let klog = upstream::KLOG_FLAGS
        .iter()
        .filter(|f| plugin.klog.registers(f.long));
    for f in plugin.flags.iter().chain(klog) {
        let short = f.short.map(|c| format!("-{c}, ")).unwrap_or_default();
        let value = if f.takes == Takes::Value {
            " value"
        } else {
            ""
        };
        out.push_str(&format!(
            "  {short}--{}{value}  [{}] {}\n",
            f.long,
            f.fate.as_str(),
            f.note
        ));
    }
    if !plugin.env.is_empty() {
        out.push_str("\nEnvironment:\n");
        for v in plugin.env {
            out.push_str(&format!("  {}  [{}] {}\n", v.name, v.fate.as_str(), v.note));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: &[&str]) -> Vec<String> {
        a.iter().map(|x| x.to_string()).collect()
    }

    fn split_own(argv: &[String]) -> Option<(Vec<String>, Vec<String>)> {
        split(argv, crate::args::takes_value)
    }

    #[test]
    fn under_its_own_name_upstream_flags_are_split_off_and_its_own_kept() {
        assert_eq!(
            split_own(&s(&["get-credentials", "-vv", "--no-cache"])),
            None
        );
        assert_eq!(split_own(&s(&["--metrics-dir", "/m", "metrics"])), None);
        assert_eq!(
            split_own(&s(&["--config", "/etc/k.yaml", "get-credentials"])),
            None
        );
        let (own, theirs) = split_own(&s(&["get-credentials", "--v=3", "-v"])).unwrap();
        assert_eq!(own, s(&["get-credentials", "-v"]));
        assert_eq!(theirs, s(&["--v=3"]));
        // Other subcommands take their own files.
        assert_eq!(split_own(&s(&["validate-config", "/etc/k.yaml"])), None);
        #[cfg(feature = "acr")]
        {
            let (own, theirs) = split_own(&s(&[
                "/etc/kubernetes/azure.json",
                "--config=/etc/k.yaml",
                "--v",
                "2",
            ]))
            .unwrap();
            assert_eq!(own, s(&["--config=/etc/k.yaml"]));
            assert_eq!(theirs, s(&["/etc/kubernetes/azure.json", "--v", "2"]));
            let p = parse_own_name(&theirs).unwrap();
            assert_eq!(p.positionals, s(&["/etc/kubernetes/azure.json"]));
        }
        #[cfg(feature = "gcp")]
        {
            let (_, theirs) = split_own(&s(&["get-credentials", "--authFlow=gcr"])).unwrap();
            assert_eq!(
                parse_own_name(&theirs).unwrap().value("authFlow"),
                Some("gcr")
            );
        }
    }

    #[test]
    fn an_upstream_plugin_is_recognised_by_the_file_name_run() {
        use std::ffi::OsStr;
        #[cfg(feature = "ecr")]
        assert_eq!(
            persona(OsStr::new("/usr/libexec/x/ecr-credential-provider")).map(|p| p.backend),
            Some("ecr")
        );
        #[cfg(feature = "gcp")]
        assert_eq!(
            persona(
                OsStr::new("C:\\k\\auth-provider-gcp.exe")
                    .to_owned()
                    .as_os_str()
            )
            .or_else(|| persona(OsStr::new("auth-provider-gcp.exe")))
            .map(|p| p.backend),
            Some("gcp")
        );
        assert!(persona(OsStr::new("kubelet-keyring")).is_none());
    }
}
