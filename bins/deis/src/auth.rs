//! `auth:*`: register, login, logout, whoami, passwd, cancel, regenerate.

use crate::args::{CancelArgs, LoginArgs, PasswdArgs, RegenerateArgs, RegisterArgs};
use crate::profile::{self, Profile};
use crate::{api_error, CliResult, Session};
use deis_api::client::Client;
use deis_api::wire::{PasswdRequest, RegisterRequest, TokensRequest};

fn normalise(controller: &str) -> CliResult<String> {
    let with_scheme = if controller.contains("://") {
        controller.to_string()
    } else {
        format!("http://{controller}")
    };
    let parsed = url::Url::parse(&with_scheme)
        .map_err(|e| format!("{controller} is not a controller URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!("{controller} is not an http(s) controller URL"));
    }
    Ok(with_scheme.trim_end_matches('/').to_string())
}

pub async fn register(session: &mut Session<'_>, args: RegisterArgs) -> CliResult {
    let controller = normalise(&args.controller)?;
    let client = Client::new(controller.clone());
    let request = RegisterRequest {
        username: args.username.clone(),
        password: args.password.clone(),
        email: args.email,
        first_name: String::new(),
        last_name: String::new(),
    };
    client.register(&request).await.map_err(api_error)?;
    session.say(format!("Registered {}", args.username));
    login(
        session,
        LoginArgs {
            controller,
            username: args.username,
            password: args.password,
        },
    )
    .await
}

pub async fn login(session: &mut Session<'_>, args: LoginArgs) -> CliResult {
    let controller = normalise(&args.controller)?;
    let client = Client::new(controller.clone())
        .login(&args.username, &args.password)
        .await
        .map_err(api_error)?;
    let token = client.token().unwrap_or_default().to_string();
    let profile = Profile {
        username: args.username.clone(),
        ssl_verify: true,
        controller,
        token,
        response_limit: 100,
    };
    profile::save(&session.env.home, &session.env.profile, &profile)?;
    session.say(format!("Logged in as {}", args.username));
    Ok(())
}

pub fn logout(session: &mut Session<'_>) -> CliResult {
    let who = profile::load(&session.env.home, &session.env.profile)?.map(|p| p.username);
    profile::remove(&session.env.home, &session.env.profile)?;
    match who {
        Some(user) => session.say(format!("Logged out {user}")),
        None => session.say("Logged out"),
    }
    Ok(())
}

pub fn whoami(session: &mut Session<'_>) -> CliResult {
    let profile = session.profile()?;
    session.say(format!(
        "You are {} at {}",
        profile.username, profile.controller
    ));
    Ok(())
}

pub async fn passwd(session: &mut Session<'_>, args: PasswdArgs) -> CliResult {
    let (client, _) = session.client()?;
    let request = PasswdRequest {
        password: args.password,
        new_password: args.new_password,
        username: args.username,
    };
    client.passwd(&request).await.map_err(api_error)?;
    session.say("Password change succeeded.");
    Ok(())
}

pub async fn cancel(session: &mut Session<'_>, args: CancelArgs) -> CliResult {
    let (client, profile) = session.client()?;
    if !args.yes {
        return Err("deleting an account cannot be undone; add --yes to confirm".into());
    }
    let target = args
        .username
        .clone()
        .unwrap_or_else(|| profile.username.clone());
    client
        .cancel(args.username.as_deref())
        .await
        .map_err(api_error)?;
    if target == profile.username {
        profile::remove(&session.env.home, &session.env.profile)?;
    }
    session.say(format!("Account cancelled: {target}"));
    Ok(())
}

pub async fn regenerate(session: &mut Session<'_>, args: RegenerateArgs) -> CliResult {
    let (client, mut profile) = session.client()?;
    let request = TokensRequest {
        username: args.username.clone(),
        all: args.all,
    };
    let token = client.regenerate_token(&request).await.map_err(api_error)?;
    let own = args
        .username
        .as_deref()
        .is_none_or(|u| u == profile.username);
    match token {
        Some(token) if own && !args.all => {
            profile.token = token;
            profile::save(&session.env.home, &session.env.profile, &profile)?;
            session.say("Token regenerated and saved");
        }
        Some(token) => session.say(format!(
            "Token for {}: {token}",
            args.username.unwrap_or_default()
        )),
        None => session.say("Every user's token was regenerated; everyone must log in again"),
    }
    Ok(())
}
