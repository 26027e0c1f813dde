//! Accounts and access: users, roles, sessions, API tokens, login with throttling and TOTP,
//! and the first-start admin. Plain Rust services over the store; HTTP lives in `api`.
//! Every login attempt is audited here; other mutations are audited by the API layer.

pub mod password;
pub mod rbac;
pub mod throttle;
pub mod totp;

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::audit::{self, Audit};
use crate::config::AuthConfig;
use crate::error::{Error, Result};
use crate::model::{
    ApiToken, LANGUAGES, PERMISSIONS, ROLE_ADMIN, Role, Session, User, builtin_roles, is_permission,
};
use crate::store::{ROLES, SESSIONS, Store, TOKEN_HASHES, TOKENS, USERNAMES, USERS, WriteTx};
pub use rbac::Grants;
use throttle::Throttle;

/// File in the data dir holding the generated first admin password (mode 0600).
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// Who is calling, and how they proved it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub grants: Grants,
    pub via: Via,
}

#[derive(Debug, Clone)]
pub enum Via {
    /// A browser session; `key` is the stored hash of the cookie.
    Session {
        key: String,
        id: String,
        csrf_token: String,
    },
    /// An API token.
    Token { id: String },
}

/// What a successful login returns: the cookie secret (given to the browser only).
#[derive(Debug)]
pub struct LoginOk {
    pub cookie_secret: String,
    pub session: Session,
    pub user: User,
}

/// Inputs of one login attempt.
#[derive(Debug)]
pub struct LoginAttempt<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub totp: Option<&'a str>,
    pub source: &'a str,
    pub user_agent: &'a str,
}

/// A new user as requested.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Changes to a user; absent fields stay as they are.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

/// Changes a user may make to their own profile.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub language: Option<String>,
}

/// A role as requested (custom roles only).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    #[serde(default)]
    pub name: String,
    pub description: Option<String>,
    pub permissions: Option<Vec<String>>,
    pub host_groups: Option<Vec<String>>,
}

/// A token right after creation: the only time its secret is visible.
#[derive(Debug, Clone, Serialize)]
pub struct NewToken {
    #[serde(flatten)]
    pub token: ApiToken,
    pub token_secret: String,
}

/// The accounts service. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    store: Store,
    audit: Audit,
    cfg: AuthConfig,
    user_throttle: Arc<Mutex<Throttle>>,
    source_throttle: Arc<Mutex<Throttle>>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the throttle lock leaves counters that are still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Auth {
    pub fn new(store: Store, audit: Audit, cfg: AuthConfig) -> Self {
        Auth {
            user_throttle: Arc::new(Mutex::new(Throttle::new(
                cfg.max_failures_per_user,
                cfg.lockout_seconds,
            ))),
            source_throttle: Arc::new(Mutex::new(Throttle::new(
                cfg.max_failures_per_source,
                cfg.lockout_seconds,
            ))),
            store,
            audit,
            cfg,
        }
    }

    pub fn config(&self) -> &AuthConfig {
        &self.cfg
    }

    /// On the first start of an empty store, creates `admin` with `env_password` (which must
    /// pass the password rules) or a generated password that must be changed at first login.
    /// A generated password is written 0600 to the data dir and returned so the caller can
    /// print it once. Returns `None` when users already exist.
    pub fn bootstrap_admin(
        &self,
        data_dir: &Path,
        env_password: Option<&str>,
    ) -> Result<Option<Bootstrap>> {
        let empty = self.store.read(|tx| tx.is_empty(&USERS))?;
        if !empty {
            return Ok(None);
        }
        let (password, generated) = match env_password.filter(|p| !p.is_empty()) {
            Some(p) => {
                password::check_rules(p, "admin", self.cfg.min_password_length).map_err(|e| {
                    Error::validation("OMP_ADMIN_PASSWORD", format!("OMP_ADMIN_PASSWORD: {e}"))
                })?;
                (p.to_string(), false)
            }
            None => (password::generate(), true),
        };
        let hash = password::hash(&password)?;
        let file = data_dir.join(INITIAL_PASSWORD_FILE);
        if generated {
            write_secret_file(&file, &format!("{password}\n"))
                .map_err(|e| Error::Internal(format!("cannot write {}: {e}", file.display())))?;
        }
        self.store.write(|tx| {
            let user = insert_user(
                tx,
                NewUser {
                    username: "admin".into(),
                    password: String::new(),
                    display_name: "Administrator".into(),
                    email: String::new(),
                    roles: vec![ROLE_ADMIN.into()],
                },
                hash,
                generated,
            )?;
            audit::append_in(
                tx,
                audit::Entry {
                    actor: "system".into(),
                    action: "users.bootstrap".into(),
                    target: user.username.clone(),
                    source: "local".into(),
                    success: true,
                    detail: if generated {
                        format!("generated password written to {}", file.display())
                    } else {
                        "password from OMP_ADMIN_PASSWORD".into()
                    },
                    ..Default::default()
                },
                audit::now_ms(),
            )?;
            Ok::<_, Error>(())
        })?;
        Ok(Some(Bootstrap {
            generated: generated.then_some(password),
            file: generated.then_some(file),
        }))
    }

    /// Checks a login attempt; creates a session on success. Audits every attempt.
    pub fn login(&self, a: &LoginAttempt<'_>) -> Result<LoginOk> {
        let t = now();
        let user_key = format!("user:{}", a.username.to_lowercase());
        let source_key = format!("src:{}", a.source);
        let audit = |ok: bool, status: i64, detail: &str| {
            let entry = audit::Entry {
                actor: truncate(a.username, 64),
                action: "auth.login".into(),
                target: truncate(a.username, 64),
                source: a.source.to_string(),
                success: ok,
                status,
                detail: detail.into(),
            };
            if let Err(e) = self.audit.append(entry) {
                tracing::error!(error = %e, "Cannot write the audit record of a login.");
            }
        };
        let locked = {
            let u = lock(&self.user_throttle).check(&user_key, t);
            let s = lock(&self.source_throttle).check(&source_key, t);
            u.max(s)
        };
        if let Some(retry_after_secs) = locked {
            audit(false, 429, "throttled");
            return Err(Error::TooManyAttempts { retry_after_secs });
        }
        let fail = |detail: &str, err: Error| {
            let u = lock(&self.user_throttle).fail(&user_key, t);
            let s = lock(&self.source_throttle).fail(&source_key, t);
            audit(false, 401, detail);
            match u.max(s) {
                Some(retry_after_secs) => Error::TooManyAttempts { retry_after_secs },
                None => err,
            }
        };
        let user = self.find_by_username(a.username)?;
        let Some(user) = user else {
            // Spend the same time as for a real user.
            password::verify(a.password, password::dummy_hash());
            return Err(fail("unknown user", Error::InvalidCredentials));
        };
        if !password::verify(a.password, &user.password_hash) {
            return Err(fail("wrong password", Error::InvalidCredentials));
        }
        if user.disabled {
            return Err(fail("user disabled", Error::InvalidCredentials));
        }
        if let Some(secret) = &user.totp_secret {
            match a.totp.map(str::trim).filter(|c| !c.is_empty()) {
                None => {
                    // Password was right: no failure counted, the client asks for the code.
                    audit(false, 401, "totp required");
                    return Err(Error::TotpRequired);
                }
                Some(code) if !totp::verify(secret, code, t) => {
                    return Err(fail("wrong totp code", Error::TotpInvalid));
                }
                Some(_) => {}
            }
        }
        lock(&self.user_throttle).succeed(&user_key);
        lock(&self.source_throttle).succeed(&source_key);
        let cookie_secret = password::random_hex(32);
        let session = Session {
            id: password::random_hex(8),
            user_id: user.id,
            csrf_token: password::random_hex(32),
            created_at: t,
            last_seen_at: t,
            source: a.source.to_string(),
            user_agent: truncate(a.user_agent, 200),
        };
        let user = self.store.write(|tx| {
            tx.put(&SESSIONS, &password::sha256_hex(&cookie_secret), &session)?;
            let mut u: User = tx
                .get_u64(&USERS, user.id)?
                .ok_or_else(|| Error::NotFound("user".into()))?;
            u.last_login_at = Some(t);
            tx.put_u64(&USERS, u.id, &u)?;
            Ok::<_, Error>(u)
        })?;
        audit(true, 200, "");
        Ok(LoginOk {
            cookie_secret,
            session,
            user,
        })
    }

    /// Resolves a session cookie; ends sessions past their idle or absolute limit.
    pub fn authenticate_session(&self, cookie_secret: &str) -> Result<Principal> {
        self.authenticate_session_at(cookie_secret, now())
    }

    /// [`Auth::authenticate_session`] at a given time (seconds), for tests of expiry.
    pub fn authenticate_session_at(&self, cookie_secret: &str, t: i64) -> Result<Principal> {
        let key = password::sha256_hex(cookie_secret);
        let Some(mut session) = self.store.read(|tx| tx.get::<Session>(&SESSIONS, &key))? else {
            return Err(Error::Unauthenticated);
        };
        let idle = self.cfg.session_idle_minutes as i64 * 60;
        let absolute = self.cfg.session_absolute_hours as i64 * 3600;
        if t - session.last_seen_at > idle || t - session.created_at > absolute {
            self.store.write(|tx| tx.delete(&SESSIONS, &key))?;
            return Err(Error::SessionExpired);
        }
        let user = self.usable_user(session.user_id)?;
        // Touch at most once a minute: idle expiry needs no finer grain, and it keeps GETs
        // from each costing a write.
        if t - session.last_seen_at >= 60 {
            session.last_seen_at = t;
            self.store.write(|tx| tx.put(&SESSIONS, &key, &session))?;
        }
        Ok(Principal {
            grants: self.grants_of(&user)?,
            user,
            via: Via::Session {
                key,
                id: session.id,
                csrf_token: session.csrf_token,
            },
        })
    }

    /// Resolves an API token secret.
    pub fn authenticate_token(&self, secret: &str) -> Result<Principal> {
        let t = now();
        let hash = password::sha256_hex(secret);
        let token = self.store.read(|tx| {
            let Some(id) = tx.get::<String>(&TOKEN_HASHES, &hash)? else {
                return Ok(None);
            };
            tx.get::<ApiToken>(&TOKENS, &id)
        })?;
        let Some(mut token) = token else {
            return Err(Error::Unauthenticated);
        };
        if token.expires_at.is_some_and(|e| e <= t) {
            return Err(Error::SessionExpired);
        }
        let user = self.usable_user(token.user_id)?;
        if token.last_used_at.is_none_or(|u| t - u >= 60) {
            token.last_used_at = Some(t);
            self.store.write(|tx| tx.put(&TOKENS, &token.id, &token))?;
        }
        Ok(Principal {
            grants: self.grants_of(&user)?,
            user,
            via: Via::Token { id: token.id },
        })
    }

    fn usable_user(&self, id: u64) -> Result<User> {
        match self.store.read(|tx| tx.get_u64::<User>(&USERS, id))? {
            Some(u) if !u.disabled => Ok(u),
            _ => Err(Error::Unauthenticated),
        }
    }

    /// True while the login behind `via` still exists (a terminal session ends with it).
    pub fn still_valid(&self, via: &Via) -> bool {
        let t = now();
        let idle = self.cfg.session_idle_minutes as i64 * 60;
        let absolute = self.cfg.session_absolute_hours as i64 * 3600;
        let r = self.store.read(|tx| match via {
            Via::Session { key, .. } => Ok(tx
                .get::<Session>(&SESSIONS, key)?
                .is_some_and(|s| t - s.last_seen_at <= idle && t - s.created_at <= absolute)),
            Via::Token { id } => Ok(tx
                .get::<ApiToken>(&TOKENS, id)?
                .is_some_and(|k| k.expires_at.is_none_or(|e| e > t))),
        });
        r.unwrap_or(false)
    }

    /// Marks a session used (a terminal being typed in counts as activity).
    pub fn touch(&self, via: &Via) {
        let Via::Session { key, .. } = via else {
            return;
        };
        let t = now();
        let _ = self.store.write(|tx| {
            if let Some(mut s) = tx.get::<Session>(&SESSIONS, key)?
                && t - s.last_seen_at >= 60
            {
                s.last_seen_at = t;
                tx.put(&SESSIONS, key, &s)?;
            }
            Ok::<_, Error>(())
        });
    }

    /// Ends one session (logout).
    pub fn logout(&self, session_key: &str) -> Result<()> {
        self.store.write(|tx| tx.delete(&SESSIONS, session_key))?;
        Ok(())
    }

    /// The user's sessions, `current` marked.
    pub fn sessions_of(&self, user_id: u64) -> Result<Vec<Session>> {
        let all = self.store.read(|tx| tx.all::<Session>(&SESSIONS))?;
        Ok(all
            .into_iter()
            .map(|(_, s)| s)
            .filter(|s| s.user_id == user_id)
            .collect())
    }

    /// Ends every session of a user.
    pub fn revoke_sessions(&self, user_id: u64) -> Result<usize> {
        Ok(self
            .store
            .write(|tx| revoke_sessions_in(tx, user_id, None))?)
    }

    /// Deletes expired sessions; returns how many.
    pub fn purge_expired_sessions(&self) -> Result<usize> {
        let t = now();
        let idle = self.cfg.session_idle_minutes as i64 * 60;
        let absolute = self.cfg.session_absolute_hours as i64 * 3600;
        self.store.write(|tx| {
            let dead: Vec<String> = tx
                .all::<Session>(&SESSIONS)?
                .into_iter()
                .filter(|(_, s)| t - s.last_seen_at > idle || t - s.created_at > absolute)
                .map(|(k, _)| k)
                .collect();
            for k in &dead {
                tx.delete(&SESSIONS, k)?;
            }
            Ok::<_, Error>(dead.len())
        })
    }

    /// Changes one's own password; other sessions of the user end.
    pub fn change_password(&self, p: &Principal, current: &str, new: &str) -> Result<()> {
        if !password::verify(current, &p.user.password_hash) {
            return Err(Error::validation(
                "current_password",
                "the current password is wrong",
            ));
        }
        if current == new {
            return Err(Error::validation(
                "new_password",
                "the new password must differ from the current one",
            ));
        }
        password::check_rules(new, &p.user.username, self.cfg.min_password_length)
            .map_err(|e| Error::validation("new_password", e.to_string()))?;
        let hash = password::hash(new)?;
        let keep = match &p.via {
            Via::Session { key, .. } => Some(key.clone()),
            Via::Token { .. } => None,
        };
        self.store.write(|tx| {
            let mut u = get_user(tx, p.user.id)?;
            u.password_hash = hash;
            u.must_change_password = false;
            tx.put_u64(&USERS, u.id, &u)?;
            revoke_sessions_in(tx, u.id, keep.as_deref())?;
            Ok::<_, Error>(())
        })
    }

    /// Updates one's own profile.
    pub fn update_profile(&self, user_id: u64, patch: ProfilePatch) -> Result<User> {
        if let Some(l) = &patch.language
            && !LANGUAGES.contains(&l.as_str())
        {
            return Err(Error::validation(
                "language",
                format!("language must be one of {}", LANGUAGES.join(", ")),
            ));
        }
        self.store.write(|tx| {
            let mut u = get_user(tx, user_id)?;
            if let Some(v) = patch.display_name {
                u.display_name = check_text("display_name", v, 100)?;
            }
            if let Some(v) = patch.email {
                u.email = check_email(v)?;
            }
            if let Some(v) = patch.language {
                u.language = v;
            }
            tx.put_u64(&USERS, u.id, &u)?;
            Ok(u)
        })
    }

    /// Starts TOTP setup: a new pending secret, active only once confirmed with a code.
    pub fn totp_setup(&self, user_id: u64) -> Result<(String, String)> {
        let secret = totp::new_secret();
        let user = self.store.write(|tx| {
            let mut u = get_user(tx, user_id)?;
            u.totp_pending = Some(secret.clone());
            tx.put_u64(&USERS, u.id, &u)?;
            Ok::<_, Error>(u)
        })?;
        let url = totp::otpauth_url(&secret, &user.username, "OMP");
        Ok((secret, url))
    }

    /// Confirms the pending TOTP secret with a current code.
    pub fn totp_enable(&self, user_id: u64, code: &str) -> Result<()> {
        self.store.write(|tx| {
            let mut u = get_user(tx, user_id)?;
            let Some(secret) = u.totp_pending.take() else {
                return Err(Error::Conflict("start TOTP setup first".into()));
            };
            if !totp::verify(&secret, code, now()) {
                return Err(Error::validation(
                    "code",
                    "the code does not match: check the device clock and try the next code",
                ));
            }
            u.totp_secret = Some(secret);
            tx.put_u64(&USERS, u.id, &u)?;
            Ok(())
        })
    }

    /// Turns TOTP off after checking the password.
    pub fn totp_disable(&self, p: &Principal, pw: &str) -> Result<()> {
        if !password::verify(pw, &p.user.password_hash) {
            return Err(Error::validation("password", "the password is wrong"));
        }
        self.store.write(|tx| {
            let mut u = get_user(tx, p.user.id)?;
            u.totp_secret = None;
            u.totp_pending = None;
            tx.put_u64(&USERS, u.id, &u)?;
            Ok(())
        })
    }

    // ---- users ----

    pub fn find_by_username(&self, username: &str) -> Result<Option<User>> {
        Ok(self.store.read(|tx| {
            let Some(id) = tx.get::<u64>(&USERNAMES, &username.to_lowercase())? else {
                return Ok(None);
            };
            tx.get_u64::<User>(&USERS, id)
        })?)
    }

    pub fn get_user(&self, id: u64) -> Result<User> {
        self.store
            .read(|tx| tx.get_u64::<User>(&USERS, id))?
            .ok_or_else(|| Error::NotFound(format!("user {id}")))
    }

    /// Users matching `q` (username, display name or email), by id.
    pub fn list_users(
        &self,
        q: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<User>, u64)> {
        let all = self.store.read(|tx| tx.all_u64::<User>(&USERS))?;
        let q = q.map(str::to_lowercase).filter(|q| !q.is_empty());
        let matching: Vec<User> = all
            .into_iter()
            .map(|(_, u)| u)
            .filter(|u| {
                q.as_ref().is_none_or(|q| {
                    u.username.to_lowercase().contains(q)
                        || u.display_name.to_lowercase().contains(q)
                        || u.email.to_lowercase().contains(q)
                })
            })
            .collect();
        let total = matching.len() as u64;
        Ok((
            matching.into_iter().skip(offset).take(limit).collect(),
            total,
        ))
    }

    pub fn create_user(&self, new: NewUser) -> Result<User> {
        check_username(&new.username)?;
        password::check_rules(&new.password, &new.username, self.cfg.min_password_length)?;
        let hash = password::hash(&new.password)?;
        self.store.write(|tx| {
            check_roles_exist(tx, &new.roles)?;
            // An admin-set password is known to the admin: the user must replace it.
            insert_user(tx, new, hash, true)
        })
    }

    pub fn update_user(&self, actor: &Principal, id: u64, patch: UserPatch) -> Result<User> {
        self.store.write(|tx| {
            let mut u = get_user(tx, id)?;
            if let Some(v) = patch.display_name {
                u.display_name = check_text("display_name", v, 100)?;
            }
            if let Some(v) = patch.email {
                u.email = check_email(v)?;
            }
            if let Some(roles) = patch.roles {
                check_roles_exist(tx, &roles)?;
                u.roles = dedup(roles);
            }
            if let Some(d) = patch.disabled {
                if d && id == actor.user.id {
                    return Err(Error::Refused("you cannot disable your own account".into()));
                }
                u.disabled = d;
                if d {
                    revoke_sessions_in(tx, id, None)?;
                }
            }
            tx.put_u64(&USERS, id, &u)?;
            ensure_admin_remains(tx)?;
            Ok(u)
        })
    }

    pub fn delete_user(&self, actor: &Principal, id: u64) -> Result<User> {
        if id == actor.user.id {
            return Err(Error::Refused("you cannot delete your own account".into()));
        }
        self.store.write(|tx| {
            let u = get_user(tx, id)?;
            tx.delete_u64(&USERS, id)?;
            tx.delete(&USERNAMES, &u.username.to_lowercase())?;
            revoke_sessions_in(tx, id, None)?;
            for (tid, t) in tx.all::<ApiToken>(&TOKENS)? {
                if t.user_id == id {
                    tx.delete(&TOKENS, &tid)?;
                    tx.delete(&TOKEN_HASHES, &t.secret_hash)?;
                }
            }
            ensure_admin_remains(tx)?;
            Ok(u)
        })
    }

    /// An admin sets a new password; the user must change it at next login.
    pub fn reset_password(&self, id: u64, new: &str) -> Result<User> {
        let u = self.get_user(id)?;
        password::check_rules(new, &u.username, self.cfg.min_password_length)
            .map_err(|e| Error::validation("new_password", e.to_string()))?;
        let hash = password::hash(new)?;
        self.store.write(|tx| {
            let mut u = get_user(tx, id)?;
            u.password_hash = hash;
            u.must_change_password = true;
            tx.put_u64(&USERS, id, &u)?;
            revoke_sessions_in(tx, id, None)?;
            Ok(u)
        })
    }

    /// Lifts the must-change flag (CLI `user passwd --keep`: the operator sets a password on
    /// behalf of the user who will use it as is).
    pub fn clear_must_change(&self, id: u64) -> Result<()> {
        self.store.write(|tx| {
            let mut u = get_user(tx, id)?;
            u.must_change_password = false;
            tx.put_u64(&USERS, id, &u)?;
            Ok(())
        })
    }

    // ---- roles ----

    /// Built-in roles first, then custom roles by name.
    pub fn list_roles(&self) -> Result<Vec<Role>> {
        let mut roles = builtin_roles();
        roles.extend(
            self.store
                .read(|tx| tx.all::<Role>(&ROLES))?
                .into_iter()
                .map(|(_, r)| r),
        );
        Ok(roles)
    }

    pub fn grants_of(&self, user: &User) -> Result<Grants> {
        let roles = self.list_roles()?;
        Ok(Grants::from_roles(
            roles.iter().filter(|r| user.roles.contains(&r.name)),
        ))
    }

    pub fn create_role(&self, input: RoleInput) -> Result<Role> {
        check_role_name(&input.name)?;
        let role = Role {
            name: input.name.clone(),
            description: check_text("description", input.description.unwrap_or_default(), 200)?,
            permissions: check_permissions(input.permissions.unwrap_or_default())?,
            host_groups: check_groups(input.host_groups.unwrap_or_default())?,
            builtin: false,
        };
        self.store.write(|tx| {
            if builtin_roles().iter().any(|r| r.name == role.name)
                || tx.get::<Role>(&ROLES, &role.name)?.is_some()
            {
                return Err(Error::Conflict(format!(
                    "role {} already exists",
                    role.name
                )));
            }
            tx.put(&ROLES, &role.name, &role)?;
            Ok(role)
        })
    }

    pub fn update_role(&self, name: &str, input: RoleInput) -> Result<Role> {
        if builtin_roles().iter().any(|r| r.name == name) {
            return Err(Error::Refused(format!(
                "built-in role {name} cannot be changed: create a custom role"
            )));
        }
        self.store.write(|tx| {
            let mut role: Role = tx
                .get(&ROLES, name)?
                .ok_or_else(|| Error::NotFound(format!("role {name}")))?;
            if let Some(d) = input.description {
                role.description = check_text("description", d, 200)?;
            }
            if let Some(p) = input.permissions {
                role.permissions = check_permissions(p)?;
            }
            if let Some(g) = input.host_groups {
                role.host_groups = check_groups(g)?;
            }
            tx.put(&ROLES, name, &role)?;
            Ok(role)
        })
    }

    pub fn delete_role(&self, name: &str) -> Result<Role> {
        if builtin_roles().iter().any(|r| r.name == name) {
            return Err(Error::Refused(format!(
                "built-in role {name} cannot be deleted"
            )));
        }
        self.store.write(|tx| {
            let role: Role = tx
                .get(&ROLES, name)?
                .ok_or_else(|| Error::NotFound(format!("role {name}")))?;
            let users: Vec<String> = tx
                .all_users()?
                .into_iter()
                .filter(|u| u.roles.iter().any(|r| r == name))
                .map(|u| u.username)
                .collect();
            if !users.is_empty() {
                return Err(Error::Conflict(format!(
                    "role {name} is held by {}: take it from them first",
                    users.join(", ")
                )));
            }
            tx.delete(&ROLES, name)?;
            Ok(role)
        })
    }

    // ---- tokens ----

    /// Tokens of one user, or of everyone when `user_id` is `None`.
    pub fn list_tokens(&self, user_id: Option<u64>) -> Result<Vec<ApiToken>> {
        let all = self.store.read(|tx| tx.all::<ApiToken>(&TOKENS))?;
        let mut v: Vec<ApiToken> = all
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| user_id.is_none_or(|u| t.user_id == u))
            .collect();
        v.sort_by_key(|t| t.created_at);
        Ok(v)
    }

    pub fn create_token(
        &self,
        user_id: u64,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<NewToken> {
        let name = check_text("name", name.to_string(), 100)?;
        if name.is_empty() {
            return Err(Error::validation("name", "give the token a name"));
        }
        if expires_in_days == Some(0) || expires_in_days.is_some_and(|d| d > 3650) {
            return Err(Error::validation(
                "expires_in_days",
                "expires_in_days must be between 1 and 3650",
            ));
        }
        let secret = format!("omp_{}", password::random_hex(20));
        let t = now();
        let token = ApiToken {
            id: password::random_hex(8),
            name,
            user_id,
            prefix: secret[..12].to_string(),
            secret_hash: password::sha256_hex(&secret),
            created_at: t,
            expires_at: expires_in_days.map(|d| t + d as i64 * 86_400),
            last_used_at: None,
        };
        self.store.write(|tx| {
            tx.put(&TOKENS, &token.id, &token)?;
            tx.put(&TOKEN_HASHES, &token.secret_hash, &token.id)?;
            Ok::<_, Error>(())
        })?;
        Ok(NewToken {
            token,
            token_secret: secret,
        })
    }

    /// Revokes a token; only its owner or a holder of `tokens:admin` may.
    pub fn revoke_token(&self, actor: &Principal, id: &str) -> Result<ApiToken> {
        self.store.write(|tx| {
            let t: ApiToken = tx
                .get(&TOKENS, id)?
                .ok_or_else(|| Error::NotFound(format!("token {id}")))?;
            if t.user_id != actor.user.id && !actor.grants.allows("tokens:admin") {
                // Same answer as a missing token: do not reveal other users' token ids.
                return Err(Error::NotFound(format!("token {id}")));
            }
            tx.delete(&TOKENS, id)?;
            tx.delete(&TOKEN_HASHES, &t.secret_hash)?;
            Ok(t)
        })
    }

    /// Every permission with its description.
    pub fn permissions() -> &'static [(&'static str, &'static str)] {
        PERMISSIONS
    }

    /// The user name for an id, for display (`#id` when gone).
    pub fn username_of(&self, id: u64) -> String {
        self.get_user(id)
            .map(|u| u.username)
            .unwrap_or_else(|_| format!("#{id}"))
    }
}

/// What the first start did about the admin account.
#[derive(Debug)]
pub struct Bootstrap {
    /// The generated password, when one was generated (print it once).
    pub generated: Option<String>,
    pub file: Option<std::path::PathBuf>,
}

trait UsersExt {
    fn all_users(&self) -> Result<Vec<User>>;
}

impl UsersExt for WriteTx {
    fn all_users(&self) -> Result<Vec<User>> {
        // Users are few; the write transaction sees its own changes.
        let mut out = Vec::new();
        for (_, id) in self.all::<u64>(&USERNAMES)? {
            if let Some(u) = self.get_u64::<User>(&USERS, id)? {
                out.push(u);
            }
        }
        Ok(out)
    }
}

fn get_user(tx: &WriteTx, id: u64) -> Result<User> {
    tx.get_u64(&USERS, id)?
        .ok_or_else(|| Error::NotFound(format!("user {id}")))
}

fn insert_user(tx: &mut WriteTx, new: NewUser, hash: String, must_change: bool) -> Result<User> {
    let lower = new.username.to_lowercase();
    if tx.get::<u64>(&USERNAMES, &lower)?.is_some() {
        return Err(Error::Conflict(format!(
            "user {} already exists",
            new.username
        )));
    }
    let id = tx.next_id("users")?;
    let user = User {
        id,
        username: new.username,
        display_name: check_text("display_name", new.display_name, 100)?,
        email: check_email(new.email)?,
        roles: dedup(new.roles),
        disabled: false,
        password_hash: hash,
        must_change_password: must_change,
        totp_secret: None,
        totp_pending: None,
        language: "en".into(),
        created_at: now(),
        last_login_at: None,
    };
    tx.put_u64(&USERS, id, &user)?;
    tx.put(&USERNAMES, &lower, &id)?;
    Ok(user)
}

fn revoke_sessions_in(
    tx: &mut WriteTx,
    user_id: u64,
    keep: Option<&str>,
) -> Result<usize, crate::store::StoreError> {
    let keys: Vec<String> = tx
        .all::<Session>(&SESSIONS)?
        .into_iter()
        .filter(|(k, s)| s.user_id == user_id && Some(k.as_str()) != keep)
        .map(|(k, _)| k)
        .collect();
    for k in &keys {
        tx.delete(&SESSIONS, k)?;
    }
    Ok(keys.len())
}

/// Refuses a change that would leave no enabled user holding the admin role.
fn ensure_admin_remains(tx: &WriteTx) -> Result<()> {
    let ok = tx
        .all_users()?
        .iter()
        .any(|u| !u.disabled && u.roles.iter().any(|r| r == ROLE_ADMIN));
    if ok {
        Ok(())
    } else {
        Err(Error::Refused(
            "this would leave no enabled administrator: keep at least one".into(),
        ))
    }
}

fn check_roles_exist(tx: &WriteTx, roles: &[String]) -> Result<()> {
    for r in roles {
        if !builtin_roles().iter().any(|b| &b.name == r) && tx.get::<Role>(&ROLES, r)?.is_none() {
            return Err(Error::validation("roles", format!("unknown role {r}")));
        }
    }
    Ok(())
}

fn check_username(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::validation(
            "username",
            "a username has 1 to 64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit",
        ))
    }
}

fn check_role_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::validation(
            "name",
            "a role name has 1 to 64 lowercase letters, digits, '_' or '-', starting with a letter",
        ))
    }
}

fn check_permissions(perms: Vec<String>) -> Result<Vec<String>> {
    if let Some(bad) = perms.iter().find(|p| !is_permission(p)) {
        return Err(Error::validation(
            "permissions",
            format!("unknown permission {bad}: see GET /api/v1/permissions"),
        ));
    }
    Ok(dedup(perms))
}

fn check_groups(groups: Vec<String>) -> Result<Vec<String>> {
    for g in &groups {
        if g.is_empty() || g.len() > 64 || g.chars().any(|c| c.is_control()) {
            return Err(Error::validation(
                "host_groups",
                format!("invalid host group name {g:?}"),
            ));
        }
    }
    Ok(dedup(groups))
}

fn check_text(field: &'static str, v: String, max: usize) -> Result<String> {
    let v = v.trim().to_string();
    if v.chars().count() > max || v.chars().any(|c| c.is_control()) {
        return Err(Error::validation(
            field,
            format!("{field} must be at most {max} characters without control characters"),
        ));
    }
    Ok(v)
}

fn check_email(v: String) -> Result<String> {
    let v = check_text("email", v, 254)?;
    if !v.is_empty() && (!v.contains('@') || v.contains(char::is_whitespace)) {
        return Err(Error::validation(
            "email",
            "email must look like name@example.com",
        ));
    }
    Ok(v)
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Writes a file readable by its owner only.
pub fn write_secret_file(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> (tempfile::TempDir, Auth) {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let auth = Auth::new(store.clone(), Audit::new(store), AuthConfig::default());
        (d, auth)
    }

    fn attempt<'a>(u: &'a str, p: &'a str) -> LoginAttempt<'a> {
        LoginAttempt {
            username: u,
            password: p,
            totp: None,
            source: "127.0.0.1",
            user_agent: "t",
        }
    }

    #[test]
    fn bootstrap_generates_once_and_forces_change() {
        let (d, auth) = service();
        let b = auth.bootstrap_admin(d.path(), None).unwrap().unwrap();
        let pw = b.generated.unwrap();
        let file = std::fs::read_to_string(d.path().join(INITIAL_PASSWORD_FILE)).unwrap();
        assert_eq!(file.trim(), pw);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.path().join(INITIAL_PASSWORD_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(auth.bootstrap_admin(d.path(), None).unwrap().is_none());
        let ok = auth.login(&attempt("admin", &pw)).unwrap();
        assert!(ok.user.must_change_password);
    }

    #[test]
    fn weak_env_password_is_refused() {
        let (d, auth) = service();
        let err = auth.bootstrap_admin(d.path(), Some("short")).unwrap_err();
        assert!(err.to_string().contains("OMP_ADMIN_PASSWORD"), "{err}");
    }

    #[test]
    fn login_failures_throttle_and_totp() {
        let (d, auth) = service();
        auth.bootstrap_admin(d.path(), Some("Admin-pass-123"))
            .unwrap();
        for _ in 0..4 {
            assert!(matches!(
                auth.login(&attempt("admin", "wrong")),
                Err(Error::InvalidCredentials)
            ));
        }
        assert!(matches!(
            auth.login(&attempt("admin", "wrong")),
            Err(Error::TooManyAttempts { .. })
        ));
        // Locked even with the right password.
        assert!(matches!(
            auth.login(&attempt("admin", "Admin-pass-123")),
            Err(Error::TooManyAttempts { .. })
        ));
        lock(&auth.user_throttle).succeed("user:admin");
        lock(&auth.source_throttle).succeed("src:127.0.0.1");
        let ok = auth.login(&attempt("admin", "Admin-pass-123")).unwrap();
        let id = ok.user.id;
        let (secret, _) = auth.totp_setup(id).unwrap();
        auth.totp_enable(id, &totp::code_at(&secret, now()).unwrap())
            .unwrap();
        assert!(matches!(
            auth.login(&attempt("admin", "Admin-pass-123")),
            Err(Error::TotpRequired)
        ));
        let mut a = attempt("admin", "Admin-pass-123");
        a.totp = Some("000000");
        let wrong = totp::code_at(&secret, now()).unwrap() == "000000";
        if !wrong {
            assert!(matches!(auth.login(&a), Err(Error::TotpInvalid)));
        }
        let code = totp::code_at(&secret, now()).unwrap();
        a.totp = Some(&code);
        auth.login(&a).unwrap();
    }

    #[test]
    fn last_admin_is_protected() {
        let (d, auth) = service();
        auth.bootstrap_admin(d.path(), Some("Admin-pass-123"))
            .unwrap();
        let admin = auth.login(&attempt("admin", "Admin-pass-123")).unwrap();
        let p = auth.authenticate_session(&admin.cookie_secret).unwrap();
        let bob = auth
            .create_user(NewUser {
                username: "bob".into(),
                password: "Bob-pass-1234".into(),
                display_name: String::new(),
                email: String::new(),
                roles: vec!["viewer".into()],
            })
            .unwrap();
        assert!(bob.must_change_password);
        let err = auth
            .update_user(
                &p,
                admin.user.id,
                UserPatch {
                    roles: Some(vec!["viewer".into()]),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("no enabled administrator"),
            "{err}"
        );
        assert!(auth.delete_user(&p, admin.user.id).is_err());
        auth.delete_user(&p, bob.id).unwrap();
        assert!(auth.find_by_username("bob").unwrap().is_none());
    }

    #[test]
    fn sessions_expire_when_idle_or_too_old() {
        let (d, auth) = service();
        auth.bootstrap_admin(d.path(), Some("Admin-pass-123"))
            .unwrap();
        let idle = AuthConfig::default().session_idle_minutes as i64 * 60;
        let ok = auth.login(&attempt("admin", "Admin-pass-123")).unwrap();
        let t0 = ok.session.created_at;
        // Used within the idle limit: still valid, and each use moves the idle window.
        let mut t = t0;
        for _ in 0..3 {
            t += idle - 5;
            auth.authenticate_session_at(&ok.cookie_secret, t).unwrap();
        }
        // Idle too long: expired, and the session is gone for good.
        let err = auth
            .authenticate_session_at(&ok.cookie_secret, t + idle + 1)
            .unwrap_err();
        assert!(matches!(err, Error::SessionExpired), "{err}");
        assert!(matches!(
            auth.authenticate_session_at(&ok.cookie_secret, t),
            Err(Error::Unauthenticated)
        ));
        // Absolute limit even when always active.
        let ok = auth.login(&attempt("admin", "Admin-pass-123")).unwrap();
        let abs = AuthConfig::default().session_absolute_hours as i64 * 3600;
        let mut t = ok.session.created_at;
        while t < ok.session.created_at + abs - idle {
            t += idle - 5;
            auth.authenticate_session_at(&ok.cookie_secret, t).unwrap();
        }
        let err = auth
            .authenticate_session_at(&ok.cookie_secret, ok.session.created_at + abs + 1)
            .unwrap_err();
        assert!(matches!(err, Error::SessionExpired), "{err}");
    }

    #[test]
    fn tokens_authenticate_until_revoked() {
        let (d, auth) = service();
        auth.bootstrap_admin(d.path(), Some("Admin-pass-123"))
            .unwrap();
        let admin = auth.find_by_username("admin").unwrap().unwrap();
        let t = auth.create_token(admin.id, "ci", Some(1)).unwrap();
        let p = auth.authenticate_token(&t.token_secret).unwrap();
        assert!(p.grants.allows("users:write"));
        auth.revoke_token(&p, &t.token.id).unwrap();
        assert!(matches!(
            auth.authenticate_token(&t.token_secret),
            Err(Error::Unauthenticated)
        ));
    }
}
