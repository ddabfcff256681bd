//! Replacement variables in cfg values: `{project_root}`-style names (Python's
//! `str.format`) and `$VAR` / `${VAR}` from the environment (`string.Template`), applied
//! to one already-tokenized word at a time so that a value never changes how a
//! command line splits.

/// Replaces `{name}` with its value from `vars`; `{{` and `}}` stand for braces.
/// An unknown name is an error that lists the known ones.
pub(crate) fn format_vars(text: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    format_vars_or(text, vars, &[])
}

/// [`format_vars`], where the names of `unavailable` are known but have no value here:
/// using one is an error that says why (`{dock_project_root}` when not docked).
pub(crate) fn format_vars_or(
    text: &str,
    vars: &[(&str, &str)],
    unavailable: &[(&str, &str)],
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                chars.next();
                out.push('}');
            }
            // `${VAR}` is an environment variable, left for `env_vars`.
            '{' if text[..i].ends_with('$') => {
                let end = text[i..].find('}').map_or(text.len(), |e| i + e + 1);
                out.push_str(&text[i..end]);
                while chars.peek().is_some_and(|&(j, _)| j < end) {
                    chars.next();
                }
            }
            '{' => {
                let rest = &text[i + 1..];
                let Some(end) = rest.find('}') else {
                    return Err(format!(
                        "unclosed `{{` in `{text}` (write {{{{ for a literal brace)"
                    ));
                };
                let name = &rest[..end];
                if let Some((_, why)) = unavailable.iter().find(|(n, _)| *n == name) {
                    return Err(format!("`{{{name}}}` {why}"));
                }
                let Some((_, value)) = vars.iter().find(|(n, _)| *n == name) else {
                    let known: Vec<String> = vars.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                    return Err(format!(
                        "unknown replacement variable `{{{name}}}` (known: {})",
                        known.join(", ")
                    ));
                };
                out.push_str(value);
                for _ in 0..=end {
                    chars.next();
                }
            }
            '}' => {
                return Err(format!(
                    "single `}}` in `{text}` (write }}}} for a literal brace)"
                ));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Replaces `$VAR` and `${VAR}` with the values `lookup` gives; `$$` is a literal `$`.
/// A variable that is not set is an error naming it.
pub(crate) fn env_vars_with(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut pieces = Vec::new();
    for piece in text.split("$$") {
        let expanded = shellexpand::env_with_context(piece, |name: &str| {
            // `$0`, `$1`… are not variable names: they stay for the container's shell.
            let is_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
            match lookup(name) {
                _ if !is_name => Ok(Some(format!("${name}"))),
                Some(v) => Ok(Some(v)),
                None => Err(format!(
                    "${name} is not set in the environment (write $${name} for a literal ${name})"
                )),
            }
        })
        .map_err(|e| e.cause)?;
        pieces.push(expanded.into_owned());
    }
    Ok(pieces.join("$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_replaces_known_names_and_escapes() {
        let vars = [("project_root", "/src/p"), ("user", "ann")];
        assert_eq!(
            format_vars("{project_root}:/work/{user}:{{x}}", &vars).unwrap(),
            "/src/p:/work/ann:{x}"
        );
        let err = format_vars("{nope}", &vars).unwrap_err();
        assert!(
            err.contains("{nope}") && err.contains("{project_root}, {user}"),
            "{err}"
        );
        assert!(format_vars("{user", &vars).is_err());
        assert_eq!(format_vars("${HOME}/{user}", &vars).unwrap(), "${HOME}/ann");
        let none = [("dock_project_root", "is known only when docked")];
        assert_eq!(
            format_vars_or("{dock_project_root}:/p", &vars, &none).unwrap_err(),
            "`{dock_project_root}` is known only when docked"
        );
        assert_eq!(format_vars_or("{user}", &vars, &none).unwrap(), "ann");
    }

    #[test]
    fn env_expands_both_forms_and_dollar_dollar() {
        let lookup = |n: &str| (n == "HOME").then(|| "/home/a b".to_string());
        assert_eq!(
            env_vars_with("$HOME/x:${HOME}/y", lookup).unwrap(),
            "/home/a b/x:/home/a b/y"
        );
        assert_eq!(env_vars_with("cost$$5", lookup).unwrap(), "cost$5");
        assert_eq!(
            env_vars_with("$(rm -rf /);x", lookup).unwrap(),
            "$(rm -rf /);x"
        );
        assert_eq!(env_vars_with("echo $0 $1", lookup).unwrap(), "echo $0 $1");
        assert!(
            env_vars_with("$MISSING", lookup)
                .unwrap_err()
                .contains("$MISSING is not set")
        );
    }
}
