//! Builds, releases, processes, domains, certificates, keys, permissions and users.

use crate::args::{
    AppJson, BuildsCreateArgs, CertsAddArgs, DomainArgs, JsonArg, KeysAddArgs, NameArg,
    PermsChangeArgs, PermsListArgs, ReleaseArg, RestartArgs, RollbackArgs, ScaleArgs,
};
use crate::output::{parse_pairs, parse_version, print_json, table};
use crate::{api_error, CliResult, Session};
use deis_api::client::Client;
use deis_api::wire::{BuildRequest, CertificateRequest, Container};
use std::collections::BTreeMap;
use std::time::Instant;

pub async fn builds_list(session: &mut Session<'_>, args: AppJson) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let builds = client.list_builds(&app).await.map_err(api_error)?;
    if args.json.json {
        return print_json(session, &builds.results);
    }
    session.say(format!("=== {app} Builds"));
    let rows: Vec<Vec<String>> = builds
        .results
        .iter()
        .map(|b| vec![b.uuid.to_string(), b.created.to_string()])
        .collect();
    for line in table(&rows) {
        session.say(line);
    }
    Ok(())
}

pub async fn builds_create(session: &mut Session<'_>, args: BuildsCreateArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let procfile_text = match &args.procfile {
        Some(text) => Some(text.clone()),
        None => std::fs::read_to_string(session.env.cwd.join("Procfile")).ok(),
    };
    let mut procfile = BTreeMap::new();
    for line in procfile_text.iter().flat_map(|t| t.lines()) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, command) = line
            .split_once(':')
            .ok_or_else(|| format!("Procfile line `{line}` is not `type: command`"))?;
        procfile.insert(name.trim().to_string(), command.trim().to_string());
    }
    let _ = write!(session.out, "Creating build... ");
    let request = BuildRequest {
        image: args.image,
        procfile,
        sha: String::new(),
        dockerfile: String::new(),
    };
    let released = client
        .create_build(&app, &request)
        .await
        .map_err(api_error)?;
    match released.release {
        Some(version) => session.say(format!("done, v{version}")),
        None => session.say("done"),
    }
    Ok(())
}

pub async fn releases_list(session: &mut Session<'_>, args: AppJson) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let releases = client.list_releases(&app).await.map_err(api_error)?;
    if args.json.json {
        return print_json(session, &releases.results);
    }
    session.say(format!("=== {app} Releases"));
    let rows: Vec<Vec<String>> = releases
        .results
        .iter()
        .map(|r| {
            vec![
                format!("v{}", r.version),
                r.created.to_string(),
                r.summary.clone(),
            ]
        })
        .collect();
    for line in table(&rows) {
        session.say(line);
    }
    Ok(())
}

pub async fn releases_info(session: &mut Session<'_>, args: ReleaseArg) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let version = parse_version(&args.version)?;
    let release = client.get_release(&app, version).await.map_err(api_error)?;
    session.say(format!("=== {app} Release v{version}"));
    let rows = vec![
        vec!["config:".to_string(), release.config.to_string()],
        vec![
            "build:".to_string(),
            release
                .build
                .map(|b| b.to_string())
                .unwrap_or_else(|| "none".into()),
        ],
        vec!["created:".to_string(), release.created.to_string()],
        vec!["owner:".to_string(), release.owner.clone()],
        vec!["summary:".to_string(), release.summary.clone()],
        vec!["uuid:".to_string(), release.uuid.to_string()],
    ];
    for line in table(&rows) {
        session.say(line);
    }
    Ok(())
}

pub async fn rollback(session: &mut Session<'_>, args: RollbackArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let version = args.version.as_deref().map(parse_version).transpose()?;
    match version {
        Some(v) => {
            let _ = write!(session.out, "Rolling back to v{v}... ");
        }
        None => {
            let _ = write!(session.out, "Rolling back one release... ");
        }
    }
    let new = client.rollback(&app, version).await.map_err(api_error)?;
    session.say(format!("done, v{new}"));
    Ok(())
}

/// Prints `=== <app> Processes` grouped by type, as `deis ps` does.
pub async fn print_processes(session: &mut Session<'_>, client: &Client, app: &str) -> CliResult {
    let containers = client.containers(app, None).await.map_err(api_error)?;
    session.say(format!("=== {app} Processes"));
    let mut by_type: BTreeMap<String, Vec<&Container>> = BTreeMap::new();
    for container in &containers.results {
        by_type
            .entry(container.process_type.clone())
            .or_default()
            .push(container);
    }
    for (process_type, mut containers) in by_type {
        containers.sort_by_key(|c| c.num);
        session.say(format!("--- {process_type}:"));
        for c in containers {
            session.say(format!(
                "{}.{} {} ({})",
                c.process_type, c.num, c.state, c.release
            ));
        }
    }
    Ok(())
}

/// Prints `=== <app> Domains`.
pub async fn print_domains(session: &mut Session<'_>, client: &Client, app: &str) -> CliResult {
    let domains = client.list_domains(app).await.map_err(api_error)?;
    session.say(format!("=== {app} Domains"));
    for domain in domains.results {
        session.say(domain.domain);
    }
    Ok(())
}

pub async fn ps_list(session: &mut Session<'_>, args: AppJson) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    if args.json.json {
        let containers = client.containers(&app, None).await.map_err(api_error)?;
        return print_json(session, &containers.results);
    }
    print_processes(session, &client, &app).await
}

pub async fn ps_scale(session: &mut Session<'_>, args: ScaleArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let mut counts = BTreeMap::new();
    for (process_type, count) in parse_pairs(&args.pairs)? {
        let count: u32 = count
            .parse()
            .map_err(|_| format!("{process_type}={count}: the count must be a whole number"))?;
        counts.insert(process_type, count);
    }
    let drink = session.env.drink.clone();
    session.say(format!("Scaling processes... but first, {drink}!"));
    let started = Instant::now();
    client.scale(&app, &counts).await.map_err(api_error)?;
    session.say(format!("done in {}s", started.elapsed().as_secs()));
    session.say("");
    print_processes(session, &client, &app).await
}

pub async fn ps_restart(session: &mut Session<'_>, args: RestartArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let (process_type, num) = match &args.target {
        None => (None, None),
        Some(target) => match target.split_once('.') {
            Some((t, n)) => {
                let n: u32 = n
                    .parse()
                    .map_err(|_| format!("{target} is not type.number"))?;
                (Some(t.to_string()), Some(n))
            }
            None => (Some(target.clone()), None),
        },
    };
    let drink = session.env.drink.clone();
    session.say(format!("Restarting processes... but first, {drink}!"));
    let started = Instant::now();
    client
        .restart(&app, process_type.as_deref(), num)
        .await
        .map_err(api_error)?;
    session.say(format!("done in {}s", started.elapsed().as_secs()));
    session.say("");
    print_processes(session, &client, &app).await
}

pub async fn domains_list(session: &mut Session<'_>, args: AppJson) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    if args.json.json {
        let domains = client.list_domains(&app).await.map_err(api_error)?;
        return print_json(session, &domains.results);
    }
    print_domains(session, &client, &app).await
}

pub async fn domains_add(session: &mut Session<'_>, args: DomainArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let _ = write!(session.out, "Adding {} to {app}... ", args.domain);
    client
        .add_domain(&app, &args.domain)
        .await
        .map_err(api_error)?;
    session.say("done");
    Ok(())
}

pub async fn domains_remove(session: &mut Session<'_>, args: DomainArgs) -> CliResult {
    let (client, app) = session.app_client(&args.app)?;
    let _ = write!(session.out, "Removing {} from {app}... ", args.domain);
    client
        .remove_domain(&app, &args.domain)
        .await
        .map_err(api_error)?;
    session.say("done");
    Ok(())
}

pub async fn certs_list(session: &mut Session<'_>, args: JsonArg) -> CliResult {
    let (client, _) = session.client()?;
    let certs = client.list_certs().await.map_err(api_error)?;
    if args.json {
        return print_json(session, &certs.results);
    }
    if certs.results.is_empty() {
        session.say("No certs");
        return Ok(());
    }
    let mut rows = vec![vec!["Common Name".to_string(), "Expires".to_string()]];
    rows.extend(
        certs
            .results
            .iter()
            .map(|c| vec![c.common_name.clone(), c.expires.to_string()]),
    );
    for line in table(&rows) {
        session.say(line);
    }
    Ok(())
}

pub async fn certs_add(session: &mut Session<'_>, args: CertsAddArgs) -> CliResult {
    let (client, _) = session.client()?;
    let read = |path: &str| {
        std::fs::read_to_string(session.env.cwd.join(path))
            .map_err(|e| format!("reading {path}: {e}"))
    };
    let request = CertificateRequest {
        certificate: read(&args.cert)?,
        key: read(&args.key)?,
        common_name: args.common_name,
    };
    let _ = write!(session.out, "Adding SSL endpoint... ");
    let cert = client.add_cert(&request).await.map_err(api_error)?;
    session.say(format!("done, {}", cert.common_name));
    Ok(())
}

pub async fn certs_remove(session: &mut Session<'_>, args: NameArg) -> CliResult {
    let (client, _) = session.client()?;
    let _ = write!(session.out, "Removing {}... ", args.name);
    client.remove_cert(&args.name).await.map_err(api_error)?;
    session.say("done");
    Ok(())
}

pub async fn keys_list(session: &mut Session<'_>, args: JsonArg) -> CliResult {
    let (client, profile) = session.client()?;
    let keys = client.list_keys().await.map_err(api_error)?;
    if args.json {
        return print_json(session, &keys.results);
    }
    session.say(format!("=== {} Keys", profile.username));
    let rows: Vec<Vec<String>> = keys
        .results
        .iter()
        .map(|k| {
            let short: String = k.public.chars().take(40).collect();
            vec![k.id.clone(), format!("{short}...")]
        })
        .collect();
    for line in table(&rows) {
        session.say(line);
    }
    Ok(())
}

pub async fn keys_add(session: &mut Session<'_>, args: KeysAddArgs) -> CliResult {
    let (client, _) = session.client()?;
    let path = match args.path {
        Some(path) => session.env.cwd.join(path),
        None => {
            let ssh = session.env.home.join(".ssh");
            ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"]
                .iter()
                .map(|n| ssh.join(n))
                .find(|p| p.is_file())
                .ok_or_else(|| "no public key found in ~/.ssh; give its path".to_string())?
        }
    };
    let public =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let public = public.trim().to_string();
    let name = public
        .split_whitespace()
        .nth(2)
        .map(str::to_string)
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "key".into());
    let _ = write!(
        session.out,
        "Uploading {} to deis... ",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    client.add_key(&name, &public).await.map_err(api_error)?;
    session.say("done");
    Ok(())
}

pub async fn keys_remove(session: &mut Session<'_>, args: NameArg) -> CliResult {
    let (client, _) = session.client()?;
    let _ = write!(session.out, "Removing {} SSH Key... ", args.name);
    client.remove_key(&args.name).await.map_err(api_error)?;
    session.say("done");
    Ok(())
}

pub async fn perms_list(session: &mut Session<'_>, args: PermsListArgs) -> CliResult {
    if args.admin {
        let (client, _) = session.client()?;
        let admins = client.list_admins().await.map_err(api_error)?;
        session.say("=== Administrators");
        for admin in admins.results {
            session.say(admin.username);
        }
        return Ok(());
    }
    let (client, app) = session.app_client(&args.app)?;
    let perms = client.list_perms(&app).await.map_err(api_error)?;
    session.say(format!("=== {app}'s Users"));
    for user in perms.users {
        session.say(user);
    }
    Ok(())
}

pub async fn perms_create(session: &mut Session<'_>, args: PermsChangeArgs) -> CliResult {
    if args.admin {
        let (client, _) = session.client()?;
        let _ = write!(
            session.out,
            "Adding {} to system administrators... ",
            args.username
        );
        client
            .grant_admin(&args.username)
            .await
            .map_err(api_error)?;
        session.say("done");
        return Ok(());
    }
    let (client, app) = session.app_client(&args.app)?;
    let _ = write!(
        session.out,
        "Adding {} to {app} collaborators... ",
        args.username
    );
    client
        .grant_perm(&app, &args.username)
        .await
        .map_err(api_error)?;
    session.say("done");
    Ok(())
}

pub async fn perms_delete(session: &mut Session<'_>, args: PermsChangeArgs) -> CliResult {
    if args.admin {
        let (client, _) = session.client()?;
        let _ = write!(
            session.out,
            "Removing {} from system administrators... ",
            args.username
        );
        client
            .revoke_admin(&args.username)
            .await
            .map_err(api_error)?;
        session.say("done");
        return Ok(());
    }
    let (client, app) = session.app_client(&args.app)?;
    let _ = write!(
        session.out,
        "Removing {} from {app} collaborators... ",
        args.username
    );
    client
        .revoke_perm(&app, &args.username)
        .await
        .map_err(api_error)?;
    session.say("done");
    Ok(())
}

pub async fn users_list(session: &mut Session<'_>, args: JsonArg) -> CliResult {
    let (client, profile) = session.client()?;
    let users = client
        .list_users(None, Some(profile.response_limit))
        .await
        .map_err(api_error)?;
    if args.json {
        return print_json(session, &users.results);
    }
    session.say("=== Users");
    for user in users.results {
        session.say(user.username);
    }
    Ok(())
}
