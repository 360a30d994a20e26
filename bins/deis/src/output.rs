//! Shared helpers: tables, JSON output, KEY=value parsing, and finding the app.

use crate::args::AppArg;
use crate::profile::Profile;
use crate::{CliResult, Session};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Aligns rows into columns separated by two spaces (the last column is not padded).
pub fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// Prints `key  value` rows, aligned.
pub fn print_pairs<'a>(
    session: &mut Session<'_>,
    pairs: impl IntoIterator<Item = (&'a String, String)>,
) {
    let rows: Vec<Vec<String>> = pairs.into_iter().map(|(k, v)| vec![k.clone(), v]).collect();
    for line in table(&rows) {
        session.say(line);
    }
}

/// Prints a value as pretty JSON.
pub fn print_json<T: Serialize>(session: &mut Session<'_>, value: &T) -> CliResult {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    session.say(text);
    Ok(())
}

/// Parses `KEY=value` arguments (the value may contain `=`).
pub fn parse_pairs(pairs: &[String]) -> CliResult<BTreeMap<String, String>> {
    let mut parsed = BTreeMap::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair} is not KEY=value"))?;
        if key.is_empty() {
            return Err(format!("{pair} has no key"));
        }
        parsed.insert(key.to_string(), value.to_string());
    }
    Ok(parsed)
}

/// Parses `v3` or `3`.
pub fn parse_version(text: &str) -> CliResult<u64> {
    text.trim_start_matches('v')
        .parse()
        .map_err(|_| format!("{text} is not a release version such as v3"))
}

/// The app to act on: `-a/--app`, else the app of a git remote pointing at the
/// controller's host, else the directory name.
pub fn resolve_app(session: &Session<'_>, arg: &AppArg, profile: &Profile) -> CliResult<String> {
    if let Some(app) = &arg.app {
        return Ok(app.clone());
    }
    if let Some(app) = app_from_remotes(&session.env.cwd, &controller_host(&profile.controller)) {
        return Ok(app);
    }
    session
        .env
        .cwd
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| "no app given; use -a <app>".to_string())
}

/// The host part of the controller URL.
pub fn controller_host(controller: &str) -> String {
    url::Url::parse(controller)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "127.0.0.1".into())
}

/// The git remote URL of an app, as Deis made it: `ssh://git@<host>:<port>/<app>.git`.
pub fn remote_url(controller: &str, port: u16, app: &str) -> String {
    format!("ssh://git@{}:{port}/{app}.git", controller_host(controller))
}

fn app_from_remotes(cwd: &Path, host: &str) -> Option<String> {
    let output = Command::new("git")
        .args(["remote", "-v"])
        .current_dir(cwd)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fallback = None;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(name), Some(url)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !url.contains(host) {
            continue;
        }
        let Some(app) = url
            .rsplit('/')
            .next()
            .and_then(|last| last.strip_suffix(".git"))
        else {
            continue;
        };
        if name == "deis" {
            return Some(app.to_string());
        }
        fallback.get_or_insert_with(|| app.to_string());
    }
    fallback
}

/// Runs git in the working directory; `Ok(false)` when it is not a repository.
pub fn git(cwd: &Path, args: &[&str]) -> CliResult<bool> {
    let output = Command::new("git")
        .args(args)
        .current_dir(cwd)
        .output()
        .map_err(|e| format!("running git: {e}"))?;
    Ok(output.status.success())
}
