use crate::error::{Error, Kind, Result};
use crate::model::{
    App, Build, Certificate, Config, Domain, Formation, Key, NewUser, Page, PageRequest, Push,
    Release, TokenHash, User,
};
use crate::release::initial_summary;
use crate::store::{AppFilter, BuildChoice, ConfigChoice, NewRelease, Store};
use crate::time::Timestamp;
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use uuid::Uuid;

/// A [`Store`] held in process memory: everything is lost when it is dropped.
///
/// One lock guards the whole state, so every method is atomic.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_user_id: u64,
    users: BTreeMap<String, User>,
    token_owner: HashMap<String, String>,
    user_token: HashMap<String, String>,
    keys: BTreeMap<(String, String), Key>,
    apps: BTreeMap<String, App>,
    collaborators: BTreeMap<String, BTreeSet<String>>,
    builds: BTreeMap<String, Vec<Build>>,
    configs: BTreeMap<String, Vec<Config>>,
    releases: BTreeMap<String, Vec<Release>>,
    domains: BTreeMap<String, Domain>,
    certificates: BTreeMap<String, Certificate>,
    pushes: BTreeMap<String, Vec<Push>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn user(&self, username: &str) -> Result<&User> {
        self.users
            .get(username)
            .ok_or_else(|| Error::not_found(Kind::User, username))
    }

    fn user_mut(&mut self, username: &str) -> Result<&mut User> {
        self.users
            .get_mut(username)
            .ok_or_else(|| Error::not_found(Kind::User, username))
    }

    fn app(&self, id: &str) -> Result<&App> {
        self.apps
            .get(id)
            .ok_or_else(|| Error::not_found(Kind::App, id))
    }

    fn latest_release(&self, app: &str) -> Result<&Release> {
        self.app(app)?;
        self.releases
            .get(app)
            .and_then(|r| r.last())
            .ok_or_else(|| Error::not_found(Kind::Release, format!("{app} latest")))
    }

    fn config(&self, app: &str, uuid: Uuid) -> Result<&Config> {
        self.configs
            .get(app)
            .and_then(|c| c.iter().find(|c| c.uuid == uuid))
            .ok_or_else(|| Error::not_found(Kind::Config, uuid.to_string()))
    }
}

fn newest_first<T: Clone>(items: Option<&Vec<T>>, page: PageRequest) -> Page<T> {
    let mut list: Vec<T> = items.cloned().unwrap_or_default();
    list.reverse();
    page.slice(&list)
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn create_user(&self, new: NewUser) -> Result<User> {
        let mut state = self.lock();
        if state.users.contains_key(&new.username) {
            return Err(Error::already_exists(Kind::User, new.username));
        }
        state.next_user_id += 1;
        let first = state.users.is_empty();
        let superuser = new.superuser || first;
        let user = User {
            id: state.next_user_id,
            username: new.username.clone(),
            email: new.email,
            first_name: new.first_name,
            last_name: new.last_name,
            is_superuser: superuser,
            is_staff: superuser,
            is_active: true,
            last_login: None,
            date_joined: Timestamp::now(),
            password_hash: new.password_hash,
        };
        state.users.insert(new.username, user.clone());
        Ok(user)
    }

    async fn get_user(&self, username: &str) -> Result<User> {
        self.lock().user(username).cloned()
    }

    async fn list_users(&self, page: PageRequest) -> Result<Page<User>> {
        let state = self.lock();
        let users: Vec<User> = state.users.values().cloned().collect();
        Ok(page.slice(&users))
    }

    async fn set_password_hash(&self, username: &str, password_hash: &str) -> Result<()> {
        self.lock().user_mut(username)?.password_hash = password_hash.into();
        Ok(())
    }

    async fn set_superuser(&self, username: &str, superuser: bool) -> Result<()> {
        let mut state = self.lock();
        let user = state.user_mut(username)?;
        user.is_superuser = superuser;
        user.is_staff = superuser;
        Ok(())
    }

    async fn touch_last_login(&self, username: &str) -> Result<()> {
        self.lock().user_mut(username)?.last_login = Some(Timestamp::now());
        Ok(())
    }

    async fn delete_user(&self, username: &str) -> Result<()> {
        let mut state = self.lock();
        state.user(username)?;
        let owned: Vec<&String> = state
            .apps
            .values()
            .filter(|a| a.owner == username)
            .map(|a| &a.id)
            .collect();
        if !owned.is_empty() {
            return Err(Error::precondition(format!(
                "{username} still owns {} app(s); transfer or destroy them first",
                owned.len()
            )));
        }
        state.users.remove(username);
        if let Some(hash) = state.user_token.remove(username) {
            state.token_owner.remove(&hash);
        }
        state.keys.retain(|(owner, _), _| owner != username);
        for users in state.collaborators.values_mut() {
            users.remove(username);
        }
        Ok(())
    }

    async fn set_token(&self, username: &str, token: &TokenHash) -> Result<()> {
        let mut state = self.lock();
        state.user(username)?;
        if let Some(old) = state.user_token.insert(username.into(), token.0.clone()) {
            state.token_owner.remove(&old);
        }
        state.token_owner.insert(token.0.clone(), username.into());
        Ok(())
    }

    async fn user_by_token(&self, token: &TokenHash) -> Result<User> {
        let state = self.lock();
        let username = state
            .token_owner
            .get(&token.0)
            .ok_or_else(|| Error::not_found(Kind::Token, "(hidden)"))?;
        state.user(username).cloned()
    }

    async fn add_key(&self, key: Key) -> Result<Key> {
        let mut state = self.lock();
        state.user(&key.owner)?;
        let id = (key.owner.clone(), key.id.clone());
        if state.keys.contains_key(&id) {
            return Err(Error::already_exists(Kind::Key, key.id));
        }
        if state.keys.values().any(|k| k.public == key.public) {
            return Err(Error::already_exists(Kind::Key, key.fingerprint));
        }
        state.keys.insert(id, key.clone());
        Ok(key)
    }

    async fn get_key(&self, owner: &str, id: &str) -> Result<Key> {
        self.lock()
            .keys
            .get(&(owner.to_string(), id.to_string()))
            .cloned()
            .ok_or_else(|| Error::not_found(Kind::Key, id))
    }

    async fn list_keys(&self, owner: &str, page: PageRequest) -> Result<Page<Key>> {
        let state = self.lock();
        let keys: Vec<Key> = state
            .keys
            .values()
            .filter(|k| k.owner == owner)
            .cloned()
            .collect();
        Ok(page.slice(&keys))
    }

    async fn key_by_fingerprint(&self, fingerprint: &str) -> Result<Key> {
        self.lock()
            .keys
            .values()
            .find(|k| k.fingerprint == fingerprint)
            .cloned()
            .ok_or_else(|| Error::not_found(Kind::Key, fingerprint))
    }

    async fn delete_key(&self, owner: &str, id: &str) -> Result<()> {
        self.lock()
            .keys
            .remove(&(owner.to_string(), id.to_string()))
            .map(|_| ())
            .ok_or_else(|| Error::not_found(Kind::Key, id))
    }

    async fn create_app(&self, app: App) -> Result<App> {
        let mut state = self.lock();
        state.user(&app.owner)?;
        if state.apps.contains_key(&app.id) {
            return Err(Error::already_exists(Kind::App, app.id));
        }
        let config = Config::initial(&app.id, &app.owner);
        let release = Release {
            uuid: Uuid::new_v4(),
            app: app.id.clone(),
            owner: app.owner.clone(),
            version: 1,
            summary: initial_summary(&app.owner),
            config: config.uuid,
            build: None,
            created: app.created,
            updated: app.created,
        };
        state.configs.insert(app.id.clone(), vec![config]);
        state.releases.insert(app.id.clone(), vec![release]);
        state.apps.insert(app.id.clone(), app.clone());
        Ok(app)
    }

    async fn get_app(&self, id: &str) -> Result<App> {
        self.lock().app(id).cloned()
    }

    async fn list_apps(&self, filter: AppFilter, page: PageRequest) -> Result<Page<App>> {
        let state = self.lock();
        let apps: Vec<App> = state
            .apps
            .values()
            .filter(|app| match &filter {
                AppFilter::All => true,
                AppFilter::VisibleTo(user) => {
                    app.owner == *user
                        || state
                            .collaborators
                            .get(&app.id)
                            .is_some_and(|c| c.contains(user))
                }
            })
            .cloned()
            .collect();
        Ok(page.slice(&apps))
    }

    async fn set_owner(&self, app: &str, owner: &str) -> Result<App> {
        let mut state = self.lock();
        state.user(owner)?;
        let record = state
            .apps
            .get_mut(app)
            .ok_or_else(|| Error::not_found(Kind::App, app))?;
        record.owner = owner.into();
        record.updated = Timestamp::now();
        Ok(record.clone())
    }

    async fn set_formation(&self, app: &str, formation: &Formation) -> Result<App> {
        let mut state = self.lock();
        let record = state
            .apps
            .get_mut(app)
            .ok_or_else(|| Error::not_found(Kind::App, app))?;
        record.structure = formation.clone();
        record.updated = Timestamp::now();
        Ok(record.clone())
    }

    async fn delete_app(&self, id: &str) -> Result<()> {
        let mut state = self.lock();
        state.app(id)?;
        state.apps.remove(id);
        state.collaborators.remove(id);
        state.builds.remove(id);
        state.configs.remove(id);
        state.releases.remove(id);
        state.pushes.remove(id);
        state.domains.retain(|_, d| d.app != id);
        Ok(())
    }

    async fn grant(&self, app: &str, username: &str) -> Result<()> {
        let mut state = self.lock();
        state.app(app)?;
        state.user(username)?;
        if !state
            .collaborators
            .entry(app.into())
            .or_default()
            .insert(username.into())
        {
            return Err(Error::already_exists(
                Kind::Permission,
                format!("{username} on {app}"),
            ));
        }
        Ok(())
    }

    async fn revoke(&self, app: &str, username: &str) -> Result<()> {
        let mut state = self.lock();
        state.app(app)?;
        let removed = state
            .collaborators
            .get_mut(app)
            .is_some_and(|c| c.remove(username));
        if removed {
            Ok(())
        } else {
            Err(Error::not_found(
                Kind::Permission,
                format!("{username} on {app}"),
            ))
        }
    }

    async fn collaborators(&self, app: &str) -> Result<Vec<String>> {
        let state = self.lock();
        state.app(app)?;
        Ok(state
            .collaborators
            .get(app)
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn get_build(&self, app: &str, uuid: Uuid) -> Result<Build> {
        let state = self.lock();
        state.app(app)?;
        state
            .builds
            .get(app)
            .and_then(|b| b.iter().find(|b| b.uuid == uuid))
            .cloned()
            .ok_or_else(|| Error::not_found(Kind::Build, uuid.to_string()))
    }

    async fn list_builds(&self, app: &str, page: PageRequest) -> Result<Page<Build>> {
        let state = self.lock();
        state.app(app)?;
        Ok(newest_first(state.builds.get(app), page))
    }

    async fn current_config(&self, app: &str) -> Result<Config> {
        let state = self.lock();
        let release = state.latest_release(app)?;
        state.config(app, release.config).cloned()
    }

    async fn get_config(&self, app: &str, uuid: Uuid) -> Result<Config> {
        let state = self.lock();
        state.app(app)?;
        state.config(app, uuid).cloned()
    }

    async fn append_release(&self, request: NewRelease) -> Result<Release> {
        let mut state = self.lock();
        let latest = state.latest_release(&request.app)?.clone();
        let build = match request.build {
            BuildChoice::Current => latest.build.map(BuildOrId::Id),
            BuildChoice::Existing(uuid) => {
                let known = state
                    .builds
                    .get(&request.app)
                    .is_some_and(|b| b.iter().any(|b| b.uuid == uuid));
                if !known {
                    return Err(Error::not_found(Kind::Build, uuid.to_string()));
                }
                Some(BuildOrId::Id(uuid))
            }
            BuildChoice::New(build) => Some(BuildOrId::New(build)),
        };
        let config = match request.config {
            ConfigChoice::Current => ConfigOrId::Id(latest.config),
            ConfigChoice::Existing(uuid) => {
                state.config(&request.app, uuid)?;
                ConfigOrId::Id(uuid)
            }
            ConfigChoice::New {
                mut config,
                expected_revision,
            } => {
                let current = state.config(&request.app, latest.config)?.revision;
                if current != expected_revision {
                    return Err(Error::precondition(format!(
                        "config of {} changed (revision {current}, expected {expected_revision}); read it again",
                        request.app
                    )));
                }
                let newest = state
                    .configs
                    .get(&request.app)
                    .and_then(|c| c.iter().map(|c| c.revision).max())
                    .unwrap_or(0);
                config.revision = newest + 1;
                config.app = request.app.clone();
                ConfigOrId::New(config)
            }
        };
        let build_id = match build {
            None => None,
            Some(BuildOrId::Id(id)) => Some(id),
            Some(BuildOrId::New(mut build)) => {
                build.app = request.app.clone();
                let id = build.uuid;
                state
                    .builds
                    .entry(request.app.clone())
                    .or_default()
                    .push(*build);
                Some(id)
            }
        };
        let config_id = match config {
            ConfigOrId::Id(id) => id,
            ConfigOrId::New(config) => {
                let id = config.uuid;
                state
                    .configs
                    .entry(request.app.clone())
                    .or_default()
                    .push(*config);
                id
            }
        };
        let now = Timestamp::now();
        let release = Release {
            uuid: Uuid::new_v4(),
            app: request.app.clone(),
            owner: request.owner,
            version: latest.version + 1,
            summary: request.summary,
            config: config_id,
            build: build_id,
            created: now,
            updated: now,
        };
        state
            .releases
            .entry(request.app)
            .or_default()
            .push(release.clone());
        Ok(release)
    }

    async fn discard_release(&self, app: &str, version: u64) -> Result<()> {
        let mut state = self.lock();
        let latest = state.latest_release(app)?.clone();
        if latest.version != version || version <= 1 {
            return Err(Error::precondition(format!(
                "only the latest release of {app} (v{}) can be discarded, and never v1",
                latest.version
            )));
        }
        let releases = state.releases.get_mut(app).expect("checked above");
        releases.pop();
        let still_used_config = releases.iter().any(|r| r.config == latest.config);
        let still_used_build = releases.iter().any(|r| r.build == latest.build);
        if !still_used_config {
            if let Some(configs) = state.configs.get_mut(app) {
                configs.retain(|c| c.uuid != latest.config);
            }
        }
        if !still_used_build {
            if let (Some(builds), Some(id)) = (state.builds.get_mut(app), latest.build) {
                builds.retain(|b| b.uuid != id);
            }
        }
        Ok(())
    }

    async fn get_release(&self, app: &str, version: u64) -> Result<Release> {
        let state = self.lock();
        state.app(app)?;
        state
            .releases
            .get(app)
            .and_then(|r| r.iter().find(|r| r.version == version))
            .cloned()
            .ok_or_else(|| Error::not_found(Kind::Release, format!("{app} v{version}")))
    }

    async fn latest_release(&self, app: &str) -> Result<Release> {
        self.lock().latest_release(app).cloned()
    }

    async fn list_releases(&self, app: &str, page: PageRequest) -> Result<Page<Release>> {
        let state = self.lock();
        state.app(app)?;
        Ok(newest_first(state.releases.get(app), page))
    }

    async fn add_domain(&self, domain: Domain) -> Result<Domain> {
        let mut state = self.lock();
        state.app(&domain.app)?;
        if state.domains.contains_key(&domain.domain) {
            return Err(Error::already_exists(Kind::Domain, domain.domain));
        }
        state.domains.insert(domain.domain.clone(), domain.clone());
        Ok(domain)
    }

    async fn get_domain(&self, domain: &str) -> Result<Domain> {
        self.lock()
            .domains
            .get(domain)
            .cloned()
            .ok_or_else(|| Error::not_found(Kind::Domain, domain))
    }

    async fn list_domains(&self, app: &str, page: PageRequest) -> Result<Page<Domain>> {
        let state = self.lock();
        state.app(app)?;
        let domains: Vec<Domain> = state
            .domains
            .values()
            .filter(|d| d.app == app)
            .cloned()
            .collect();
        Ok(page.slice(&domains))
    }

    async fn delete_domain(&self, app: &str, domain: &str) -> Result<()> {
        let mut state = self.lock();
        state.app(app)?;
        match state.domains.get(domain) {
            Some(record) if record.app == app => {
                state.domains.remove(domain);
                Ok(())
            }
            _ => Err(Error::not_found(Kind::Domain, domain)),
        }
    }

    async fn add_certificate(&self, certificate: Certificate) -> Result<Certificate> {
        let mut state = self.lock();
        state.user(&certificate.owner)?;
        if state.certificates.contains_key(&certificate.common_name) {
            return Err(Error::already_exists(
                Kind::Certificate,
                certificate.common_name,
            ));
        }
        state
            .certificates
            .insert(certificate.common_name.clone(), certificate.clone());
        Ok(certificate)
    }

    async fn get_certificate(&self, common_name: &str) -> Result<Certificate> {
        self.lock()
            .certificates
            .get(common_name)
            .cloned()
            .ok_or_else(|| Error::not_found(Kind::Certificate, common_name))
    }

    async fn list_certificates(
        &self,
        owner: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<Certificate>> {
        let state = self.lock();
        let certificates: Vec<Certificate> = state
            .certificates
            .values()
            .filter(|c| owner.is_none_or(|o| c.owner == o))
            .cloned()
            .collect();
        Ok(page.slice(&certificates))
    }

    async fn delete_certificate(&self, common_name: &str) -> Result<()> {
        self.lock()
            .certificates
            .remove(common_name)
            .map(|_| ())
            .ok_or_else(|| Error::not_found(Kind::Certificate, common_name))
    }

    async fn record_push(&self, push: Push) -> Result<Push> {
        let mut state = self.lock();
        state.app(&push.app)?;
        state
            .pushes
            .entry(push.app.clone())
            .or_default()
            .push(push.clone());
        Ok(push)
    }

    async fn list_pushes(&self, app: &str, page: PageRequest) -> Result<Page<Push>> {
        let state = self.lock();
        state.app(app)?;
        Ok(newest_first(state.pushes.get(app), page))
    }
}

enum BuildOrId {
    Id(Uuid),
    New(Box<Build>),
}

enum ConfigOrId {
    Id(Uuid),
    New(Box<Config>),
}
