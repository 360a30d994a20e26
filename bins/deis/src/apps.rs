//! `apps:*`, `logs`, `run` and `git:remote`.

use crate::args::{
    AppJson, AppOnly, CreateArgs, DestroyArgs, JsonArg, LogsArgs, RemoteArgs, RunArgs, TransferArgs,
};
use crate::output::{self, print_json, remote_url, resolve_app};
use crate::{api_error, resources, CliResult, Session};
use std::time::Instant;

pub async fn list(session: &mut Session<'_>, args: JsonArg) -> CliResult {
    let (client, profile) = session.client()?;
    let apps = client
        .list_apps(None, Some(profile.response_limit))
        .await
        .map_err(api_error)?;
    if args.json {
        return print_json(session, &apps.results);
    }
    session.say("=== Apps");
    let mut ids: Vec<String> = apps.results.into_iter().map(|a| a.id).collect();
    ids.sort();
    for id in ids {
        session.say(id);
    }
    Ok(())
}

pub async fn create(session: &mut Session<'_>, args: CreateArgs) -> CliResult {
    let (client, profile) = session.client()?;
    let _ = write!(session.out, "Creating Application... ");
    let app = client
        .create_app(args.id.as_deref())
        .await
        .map_err(api_error)?;
    session.say(format!("done, created {}", app.id));
    if let Some(buildpack) = &args.buildpack {
        let patch = serde_json::json!({"values": {"BUILDPACK_URL": buildpack}});
        client
            .set_config(&app.id, &patch)
            .await
            .map_err(api_error)?;
    }
    if !args.no_remote {
        add_remote(session, &profile.controller, &app.id, &args.remote)?;
    }
    Ok(())
}

fn add_remote(session: &mut Session<'_>, controller: &str, app: &str, remote: &str) -> CliResult {
    let url = remote_url(controller, session.env.ssh_port, app);
    let cwd = session.env.cwd.clone();
    if !output::git(&cwd, &["rev-parse", "--git-dir"])? {
        session.say(format!("remote available at {url}"));
        return Ok(());
    }
    if output::git(&cwd, &["remote", "get-url", remote])? {
        return Err(format!(
            "a git remote named {remote} exists already; remove it or use -r"
        ));
    }
    if !output::git(&cwd, &["remote", "add", remote, &url])? {
        return Err(format!("could not add the git remote {remote}"));
    }
    session.say(format!("Git remote {remote} added"));
    session.say(format!("remote available at {url}"));
    Ok(())
}

pub async fn git_remote(session: &mut Session<'_>, args: RemoteArgs) -> CliResult {
    let (client, profile) = session.client()?;
    let app = resolve_app(session, &args.app, &profile)?;
    client.get_app(&app).await.map_err(api_error)?;
    add_remote(session, &profile.controller, &app, &args.remote)
}

pub async fn info(session: &mut Session<'_>, args: AppJson) -> CliResult {
    let (client, profile) = session.client()?;
    let app = resolve_app(session, &args.app, &profile)?;
    let record = client.get_app(&app).await.map_err(api_error)?;
    if args.json.json {
        return print_json(session, &record);
    }
    session.say(format!("=== {app} Application"));
    let rows = vec![
        vec!["updated:".to_string(), record.updated.to_string()],
        vec!["uuid:".to_string(), record.uuid.to_string()],
        vec!["created:".to_string(), record.created.to_string()],
        vec!["url:".to_string(), record.url.clone()],
        vec!["owner:".to_string(), record.owner.clone()],
        vec!["id:".to_string(), record.id.clone()],
    ];
    for line in output::table(&rows) {
        session.say(line);
    }
    session.say("");
    resources::print_processes(session, &client, &app).await?;
    session.say("");
    resources::print_domains(session, &client, &app).await
}

pub async fn open(session: &mut Session<'_>, args: AppOnly) -> CliResult {
    let (client, profile) = session.client()?;
    let app = resolve_app(session, &args.app, &profile)?;
    let record = client.get_app(&app).await.map_err(api_error)?;
    session.say(format!("http://{}", record.url));
    Ok(())
}

pub async fn destroy(session: &mut Session<'_>, args: DestroyArgs) -> CliResult {
    let (client, profile) = session.client()?;
    let app = resolve_app(session, &args.app, &profile)?;
    if args.confirm.as_deref() != Some(app.as_str()) {
        return Err(format!(
            "destroying {app} cannot be undone; confirm with --confirm={app}"
        ));
    }
    let started = Instant::now();
    session.say(format!("Destroying {app}..."));
    client.destroy_app(&app).await.map_err(api_error)?;
    session.say(format!("done in {}s", started.elapsed().as_secs()));
    let cwd = session.env.cwd.clone();
    let url = remote_url(&profile.controller, session.env.ssh_port, &app);
    let remote_is_this_app = std::process::Command::new("git")
        .args(["remote", "get-url", "deis"])
        .current_dir(&cwd)
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == url);
    if remote_is_this_app && output::git(&cwd, &["remote", "remove", "deis"])? {
        session.say("Git remote deis removed");
    }
    Ok(())
}

pub async fn transfer(session: &mut Session<'_>, args: TransferArgs) -> CliResult {
    let (client, profile) = session.client()?;
    let app = resolve_app(session, &args.app, &profile)?;
    client
        .transfer_app(&app, &args.username)
        .await
        .map_err(api_error)?;
    session.say(format!("Transferred {app} to {}", args.username));
    Ok(())
}

pub async fn logs(session: &mut Session<'_>, args: LogsArgs) -> CliResult {
    let (client, profile) = session.client()?;
    let app = resolve_app(session, &args.app, &profile)?;
    if args.follow {
        use futures::StreamExt;
        let mut stream = client
            .follow_logs(&app, args.lines)
            .await
            .map_err(api_error)?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(api_error)?;
            let _ = session.out.write_all(&chunk);
            let _ = session.out.flush();
        }
        return Ok(());
    }
    match client.logs(&app, args.lines).await.map_err(api_error)? {
        Some(text) => {
            let text = text.trim_end_matches('\n').to_string();
            session.say(text);
        }
        None => session.say(format!("There are no logs for {app} yet")),
    }
    Ok(())
}

pub async fn run(session: &mut Session<'_>, args: RunArgs) -> CliResult {
    let (client, profile) = session.client()?;
    let app = resolve_app(session, &args.app, &profile)?;
    let command = args.command.join(" ");
    let (code, output) = client.run(&app, &command).await.map_err(api_error)?;
    let _ = write!(session.out, "{output}");
    session.exit_code = code;
    Ok(())
}
