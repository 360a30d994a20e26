//! The Procfile: one `<process type>: <command>` per line.

use crate::BuildError;
use std::collections::BTreeMap;

/// Parses a Procfile. Blank lines and `#` comments are allowed; every other line must be
/// `<type>: <command>` with a valid process type, a non-empty command and no duplicate type.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, BuildError> {
    let mut processes = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let error = |message: String| BuildError::Procfile { line, message };
        let (name, command) = trimmed
            .split_once(':')
            .ok_or_else(|| error(format!("expected `<type>: <command>`, got `{trimmed}`")))?;
        let name = name.trim();
        let command = command.trim();
        deis_core::validation::process_type(name).map_err(|e| error(e.message))?;
        if command.is_empty() {
            return Err(error(format!("process type `{name}` has no command")));
        }
        if processes
            .insert(name.to_string(), command.to_string())
            .is_some()
        {
            return Err(error(format!("process type `{name}` is defined twice")));
        }
    }
    Ok(processes)
}

/// Reads `default_process_types` from the YAML a buildpack's `bin/release` prints.
///
/// Only the subset buildpacks emit is understood: a top-level `default_process_types:` key
/// followed by indented `type: command` lines (quoted or not).
pub fn parse_release_defaults(yaml: &str) -> BTreeMap<String, String> {
    let mut defaults = BTreeMap::new();
    let mut inside = false;
    for line in yaml.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if !indented {
            inside = line.trim_end() == "default_process_types:";
            continue;
        }
        if inside {
            if let Some((name, command)) = line.trim().split_once(':') {
                let command = unquote(command.trim());
                if !command.is_empty() && deis_core::validation::process_type(name.trim()).is_ok() {
                    defaults.insert(name.trim().to_string(), command.to_string());
                }
            }
        }
    }
    defaults
}

fn unquote(text: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types_and_commands() {
        let parsed =
            parse("# app\nweb: ./server --port $PORT\n\nworker:   bin/work  \nclock:sleep 1\n")
                .unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed["web"], "./server --port $PORT");
        assert_eq!(parsed["worker"], "bin/work");
        assert_eq!(parsed["clock"], "sleep 1");
        // A command may contain colons.
        assert_eq!(parse("web: echo a:b").unwrap()["web"], "echo a:b");
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let cases = [
            ("web ./server", 1, "expected"),
            ("web: ok\nworker:", 2, "no command"),
            ("web: a\nweb: b", 2, "twice"),
            ("We b: x", 1, ""),
            ("../x: y", 1, ""),
        ];
        for (text, line, needle) in cases {
            match parse(text) {
                Err(BuildError::Procfile { line: got, message }) => {
                    assert_eq!(got, line, "{text:?}");
                    assert!(message.contains(needle), "{text:?}: {message}");
                }
                other => panic!("{text:?}: expected a Procfile error, got {other:?}"),
            }
        }
    }

    #[test]
    fn reads_release_defaults() {
        let yaml = "---\naddons: []\ndefault_process_types:\n  web: \"python app.py\"\n  worker: 'celery'\nconfig_vars:\n  X: y\n";
        let defaults = parse_release_defaults(yaml);
        assert_eq!(defaults.len(), 2);
        assert_eq!(defaults["web"], "python app.py");
        assert_eq!(defaults["worker"], "celery");
        assert!(parse_release_defaults("nothing: here").is_empty());
    }
}
