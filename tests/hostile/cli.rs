//! Hostile input: the command line. The kubelet folds a plugin's stderr into one line of its
//! own log, so a usage error is one line naming the flag or word and the fix; `--help` still
//! prints the whole help.

use crate::common::*;

#[test]
fn usage_errors_are_one_line_naming_the_word_and_the_fix() {
    let s = Sandbox::new();
    for (args, word) in [
        (&["--bogus"][..], "--bogus"),
        (&["get-credential"], "get-credential"),
        (&["--cache-dir="], "--cache-dir"),
        (&["get-credentials", "--no-cache=maybe"], "--no-cache"),
        (&["explain"], "image"),
        (&["cache"], "cache"),
    ] {
        let out = s.run(args, "");
        let line = assert_one_line_exit(&out, 2, &[]);
        assert!(line.contains(word), "{args:?}: names {word}: {line}");
        assert!(
            line.contains("--help"),
            "{args:?}: says where to look: {line}"
        );
        assert!(!line.contains("Usage:"), "{args:?}: {line}");
    }
    // A suggestion when clap has one.
    let line = assert_one_line_exit(&s.run(&["get-credential"], ""), 2, &[]);
    assert!(line.contains("get-credentials"), "{line}");
    // A flag's value is never repeated (it could be a secret pasted in the wrong place).
    let line = assert_one_line_exit(&s.run(&["--token=hunter2"], ""), 2, &["hunter2"]);
    assert!(line.contains("--token"), "{line}");
}
