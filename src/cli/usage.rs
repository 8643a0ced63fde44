//! A clap error as one line naming the flag or word (never a value), for the kubelet's log.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use keyring_kubelet_config::go_quote;

use crate::args::FLAGS;

/// The command a clap error is about (`kubelet-keyring explain`), from its usage line.
pub(super) fn usage_of(e: &clap::Error) -> String {
    let usage = match e.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(s)) => s.to_string(),
        // Help shown for a missing subcommand carries its usage only in the text.
        _ => e.render().to_string(),
    };
    let words: Vec<&str> = usage
        .split_whitespace()
        .skip_while(|w| *w != "Usage:")
        .skip(1)
        .take_while(|w| !w.starts_with(['-', '[', '<']))
        .collect();
    if words.is_empty() {
        "kubelet-keyring".into()
    } else {
        words.join(" ")
    }
}

/// What a clap error says is wrong, in a few words naming the flag or word (never a value
/// that was given, which could be a secret pasted in the wrong place), with clap's
/// suggestion if it has one. The caller adds the fix.
pub fn usage_error(e: &clap::Error) -> String {
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    let all = |kind| match e.get(kind) {
        Some(ContextValue::Strings(v)) => v.join(", "),
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    // `--flag <VALUE>` or `--flag=...` as given: the flag's name alone.
    let flag = || {
        let arg = text(ContextKind::InvalidArg).unwrap_or_default();
        let name = arg.split(['=', ' ']).next().unwrap_or_default().to_string();
        let env = name
            .strip_prefix("--")
            .and_then(|n| FLAGS.iter().find(|f| f.long == n))
            .and_then(|f| f.env)
            .map(|v| format!(" (or {v})"))
            .unwrap_or_default();
        (name, env)
    };
    let hint = |kind| {
        text(kind)
            .map(|s| format!(" (did you mean {}?)", go_quote(&s)))
            .unwrap_or_default()
    };
    let what = match e.kind() {
        ErrorKind::InvalidSubcommand => format!(
            "unknown subcommand {}{}",
            go_quote(&text(ContextKind::InvalidSubcommand).unwrap_or_default()),
            hint(ContextKind::SuggestedSubcommand)
        ),
        ErrorKind::UnknownArgument => {
            let (name, _) = flag();
            let what = if name.starts_with('-') {
                "unknown flag"
            } else {
                "unexpected argument"
            };
            format!(
                "{what} {}{}",
                go_quote(&name),
                hint(ContextKind::SuggestedArg)
            )
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let (name, env) = flag();
            let valid = all(ContextKind::ValidValue);
            if text(ContextKind::InvalidValue).is_some_and(|v| v.is_empty()) {
                format!("{}{env} needs a value", go_quote(&name))
            } else if valid.is_empty() {
                format!("invalid value for {}{env}", go_quote(&name))
            } else {
                format!(
                    "invalid value for {}{env} (one of: {valid})",
                    go_quote(&name)
                )
            }
        }
        ErrorKind::ArgumentConflict => {
            let (name, _) = flag();
            match text(ContextKind::PriorArg) {
                Some(prior) if prior.split(['=', ' ']).next() != Some(name.as_str()) => {
                    format!(
                        "{} cannot be used with {}",
                        go_quote(&name),
                        go_quote(&prior)
                    )
                }
                _ => format!("{} is given more than once", go_quote(&name)),
            }
        }
        ErrorKind::TooManyValues | ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            let (name, env) = flag();
            match e.kind() {
                ErrorKind::TooManyValues => format!("{}{env} takes no value here", go_quote(&name)),
                _ => format!("wrong number of values for {}{env}", go_quote(&name)),
            }
        }
        ErrorKind::MissingRequiredArgument => {
            format!("missing {}", all(ContextKind::InvalidArg).to_lowercase())
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let command = usage_of(e);
            let name = command.rsplit(' ').next().unwrap_or_default();
            // The subcommands, from the help text shown in place of the error.
            let text = e.render().to_string();
            let subs: Vec<&str> = text
                .lines()
                .skip_while(|l| !l.starts_with("Commands:"))
                .skip(1)
                .take_while(|l| l.starts_with(' '))
                .filter_map(|l| l.split_whitespace().next())
                .filter(|w| *w != "help")
                .collect();
            match subs.is_empty() {
                true => format!("{} needs a subcommand", go_quote(name)),
                false => format!(
                    "{} needs a subcommand (one of: {})",
                    go_quote(name),
                    subs.join(", ")
                ),
            }
        }
        kind => kind.as_str().unwrap_or("invalid arguments").to_string(),
    };
    what
}
