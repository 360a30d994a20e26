//! `config:*`, `limits:*` and `tags:*`: all of them are the app's config.

use crate::args::{
    AppJson, ConfigListArgs, ConfigPullArgs, ConfigPushArgs, KeysArgs, LimitsSetArgs,
    LimitsUnsetArgs, PairsArgs,
};
use crate::output::{parse_pairs, print_json, print_pairs};
use crate::{api_error, CliResult, Session};
use deis_api::client::Client;
use serde_json::{json, Map, Value};

async fn print_values(
    session: &mut Session<'_>,
    client: &Client,
    app: &str,
    oneline: bool,
) -> CliResult {
    let config = client.get_config(app).await.map_err(api_error)?;
    if oneline {
        let pairs: Vec<String> = config
            .values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        session.say(pairs.join(" "));
        return Ok(());
    }
    session.say(format!("=== {app} Config"));
    print_pairs(session, config.values.iter().map(|(k, v)| (k, v.clone())));
    Ok(())
}

async fn apply(
    session: &mut Session<'_>,
    client: &Client,
    app: &str,
    patch: Value,
    what: &str,
) -> CliResult {
    let _ = write!(session.out, "{what}... ");
    let released = client.set_config(app, &patch).await.map_err(api_error)?;
    match released.release {
        Some(version) => session.say(format!("done, v{version}")),
        None => session.say("done"),
    }
    session.say("");
    Ok(())
}

pub async fn list(session: &mut Session<'_>, args: ConfigListArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    if args.json.json {
        let config = client.get_config(&app).await.map_err(api_error)?;
        return print_json(session, &config.values);
    }
    print_values(session, &client, &app, args.oneline).await
}

pub async fn set(session: &mut Session<'_>, args: PairsArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let values: Map<String, Value> = parse_pairs(&args.pairs)?
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    apply(
        session,
        &client,
        &app,
        json!({ "values": values }),
        "Creating config",
    )
    .await?;
    print_values(session, &client, &app, false).await
}

pub async fn unset(session: &mut Session<'_>, args: KeysArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let values: Map<String, Value> = args.keys.iter().map(|k| (k.clone(), Value::Null)).collect();
    apply(
        session,
        &client,
        &app,
        json!({ "values": values }),
        "Removing config",
    )
    .await?;
    print_values(session, &client, &app, false).await
}

fn quote(value: &str) -> String {
    if value
        .chars()
        .any(|c| c.is_whitespace() || "\"'#$\\".contains(c))
    {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        value.to_string()
    }
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        return inner.replace("\\\"", "\"").replace("\\\\", "\\");
    }
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_string();
    }
    value.to_string()
}

pub async fn pull(session: &mut Session<'_>, args: ConfigPullArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let path = session.env.cwd.join(".env");
    if path.exists() && !args.overwrite {
        return Err(".env exists already; use -o to overwrite it".into());
    }
    let config = client.get_config(&app).await.map_err(api_error)?;
    let text: String = config
        .values
        .iter()
        .map(|(k, v)| format!("{k}={}\n", quote(v)))
        .collect();
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    session.say(format!(
        "Wrote {} value(s) of {app} to .env",
        config.values.len()
    ));
    Ok(())
}

pub async fn push(session: &mut Session<'_>, args: ConfigPushArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let path = session.env.cwd.join(&args.path);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut values = Map::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("{}:{}: expected KEY=value", args.path, number + 1))?;
        values.insert(key.trim().to_string(), Value::String(unquote(value)));
    }
    if values.is_empty() {
        return Err(format!("{} has no KEY=value lines", args.path));
    }
    apply(
        session,
        &client,
        &app,
        json!({ "values": values }),
        "Creating config",
    )
    .await?;
    print_values(session, &client, &app, false).await
}

fn limit_kind(memory: bool, cpu: bool) -> &'static str {
    if cpu && !memory {
        "cpu"
    } else {
        "memory"
    }
}

async fn print_limits(session: &mut Session<'_>, client: &Client, app: &str) -> CliResult {
    let config = client.get_config(app).await.map_err(api_error)?;
    session.say(format!("=== {app} Limits"));
    session.say("");
    session.say("--- Memory");
    if config.memory.is_empty() {
        session.say("Unlimited");
    }
    print_pairs(session, config.memory.iter().map(|(k, v)| (k, v.clone())));
    session.say("");
    session.say("--- CPU");
    if config.cpu.is_empty() {
        session.say("Unlimited");
    }
    print_pairs(session, config.cpu.iter().map(|(k, v)| (k, v.to_string())));
    Ok(())
}

pub async fn limits_list(session: &mut Session<'_>, args: AppJson) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    if args.json.json {
        let config = client.get_config(&app).await.map_err(api_error)?;
        return print_json(
            session,
            &json!({"memory": config.memory, "cpu": config.cpu}),
        );
    }
    print_limits(session, &client, &app).await
}

pub async fn limits_set(session: &mut Session<'_>, args: LimitsSetArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let kind = limit_kind(args.memory, args.cpu);
    let mut limits = Map::new();
    for (process_type, value) in parse_pairs(&args.pairs)? {
        let value = if kind == "cpu" {
            Value::from(
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{value} is not a number of CPU shares"))?,
            )
        } else {
            Value::String(value)
        };
        limits.insert(process_type, value);
    }
    apply(
        session,
        &client,
        &app,
        json!({ kind: limits }),
        "Applying limits",
    )
    .await?;
    print_limits(session, &client, &app).await
}

pub async fn limits_unset(session: &mut Session<'_>, args: LimitsUnsetArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let kind = limit_kind(args.memory, args.cpu);
    let limits: Map<String, Value> = args
        .types
        .iter()
        .map(|t| (t.clone(), Value::Null))
        .collect();
    apply(
        session,
        &client,
        &app,
        json!({ kind: limits }),
        "Applying limits",
    )
    .await?;
    print_limits(session, &client, &app).await
}

async fn print_tags(session: &mut Session<'_>, client: &Client, app: &str) -> CliResult {
    let config = client.get_config(app).await.map_err(api_error)?;
    session.say(format!("=== {app} Tags"));
    print_pairs(session, config.tags.iter().map(|(k, v)| (k, v.clone())));
    Ok(())
}

pub async fn tags_list(session: &mut Session<'_>, args: AppJson) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    if args.json.json {
        let config = client.get_config(&app).await.map_err(api_error)?;
        return print_json(session, &config.tags);
    }
    print_tags(session, &client, &app).await
}

pub async fn tags_set(session: &mut Session<'_>, args: PairsArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let tags: Map<String, Value> = parse_pairs(&args.pairs)?
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    apply(
        session,
        &client,
        &app,
        json!({ "tags": tags }),
        "Applying tags",
    )
    .await?;
    print_tags(session, &client, &app).await
}

pub async fn tags_unset(session: &mut Session<'_>, args: KeysArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let tags: Map<String, Value> = args.keys.iter().map(|k| (k.clone(), Value::Null)).collect();
    apply(
        session,
        &client,
        &app,
        json!({ "tags": tags }),
        "Applying tags",
    )
    .await?;
    print_tags(session, &client, &app).await
}
