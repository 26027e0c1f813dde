//! RBAC decisions: what a set of roles grants. Sans-IO and the single place that answers
//! "may this principal do that (on that host group)?"; the API asks it through the route
//! table, services ask it for host-scoped checks.

use std::collections::BTreeSet;

use crate::model::Role;

/// What a principal may do: for each role, its permissions and host-group scope.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    scopes: Vec<(BTreeSet<String>, Vec<String>)>,
}

impl Grants {
    /// Grants from the roles a user holds.
    pub fn from_roles<'a>(roles: impl IntoIterator<Item = &'a Role>) -> Self {
        Grants {
            scopes: roles
                .into_iter()
                .map(|r| {
                    (
                        r.permissions.iter().cloned().collect(),
                        r.host_groups.clone(),
                    )
                })
                .collect(),
        }
    }

    /// True when some role grants `perm`, whatever its host-group scope. Routes that act on
    /// no particular host use this; host-scoped actions use [`Grants::allows_on`].
    pub fn allows(&self, perm: &str) -> bool {
        self.scopes.iter().any(|(p, _)| p.contains(perm))
    }

    /// True when some role grants `perm` on a host in `groups` (a host may be in several
    /// groups; a role with no host groups covers every host).
    pub fn allows_on(&self, perm: &str, groups: &[String]) -> bool {
        self.scopes.iter().any(|(p, scope)| {
            p.contains(perm) && (scope.is_empty() || scope.iter().any(|g| groups.contains(g)))
        })
    }

    /// Every permission granted by any role, sorted.
    pub fn permissions(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self.scopes.iter().flat_map(|(p, _)| p).collect();
        all.into_iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::builtin_roles;

    fn role(perms: &[&str], groups: &[&str]) -> Role {
        Role {
            name: "r".into(),
            description: String::new(),
            permissions: perms.iter().map(|s| s.to_string()).collect(),
            host_groups: groups.iter().map(|s| s.to_string()).collect(),
            builtin: false,
        }
    }

    #[test]
    fn decisions() {
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let scoped = role(&["exec:run", "hosts:read"], &["a"]);
        let global = role(&["hosts:read"], &[]);
        let grants = Grants::from_roles([&scoped, &global]);
        // (permission, host groups, expected)
        let cases: &[(&str, &[&str], bool)] = &[
            ("exec:run", &["a"], true),
            ("exec:run", &["b"], false),
            ("exec:run", &["b", "a"], true),
            ("exec:run", &[], false),
            ("hosts:read", &["b"], true),
            ("terminal:open", &["a"], false),
        ];
        for (perm, groups, want) in cases {
            assert_eq!(
                grants.allows_on(perm, &g(groups)),
                *want,
                "{perm} on {groups:?}"
            );
        }
        assert!(grants.allows("exec:run"));
        assert!(!grants.allows("users:write"));
        assert_eq!(grants.permissions(), vec!["exec:run", "hosts:read"]);
    }

    #[test]
    fn builtin_viewer_cannot_write() {
        let roles = builtin_roles();
        let viewer = roles.iter().find(|r| r.name == "viewer").unwrap();
        let grants = Grants::from_roles([viewer]);
        assert!(grants.allows("hosts:read"));
        assert!(!grants.allows("users:write"));
        assert!(!grants.allows("audit:read"));
        assert!(!Grants::default().allows("hosts:read"));
    }
}
