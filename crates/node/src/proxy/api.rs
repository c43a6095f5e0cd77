//! [`ProxyApi`]: the user's commands on the proxy and the bridge. Each one is checked whole, then written to its
//! file, and only then applied to the running proxy or bridge, all under the service's lock: a command that fails
//! changes nothing, and two commands never interleave.

use std::sync::Arc;

use kolokol_core::detour::{Host, Pattern, Rule, Rules};
use kolokol_proxy::{Invitation, ProxyHandle};

use super::saved::{self, MAX_BRIDGES, MAX_INVITATIONS, SavedBridge, SavedInvitation};
use super::views::{
    BridgeServerView, BridgeView, InvitationInfoView, InvitationView, ProxyStatusView, SiteView,
};
use super::{ProxyService, State, effective_rules};
use crate::error::ApiError;

/// The proxy and bridge part of the node's API (see [`crate::Api::proxy`]). Cheap to clone.
#[derive(Clone)]
pub struct ProxyApi {
    service: Arc<ProxyService>,
}

impl ProxyApi {
    pub(crate) fn new(service: Arc<ProxyService>) -> ProxyApi {
        ProxyApi { service }
    }

    /// Which sites went where, the bridges' health, and this node's own bridge.
    pub fn status(&self) -> ProxyStatusView {
        let state = self.service.state();
        let live = state.proxy.as_ref().map(ProxyHandle::status);
        let sites = live.as_ref().map_or_else(Vec::new, |status| {
            status
                .sites
                .iter()
                .map(|site| SiteView::from_site(site, status.now_ms))
                .collect()
        });
        let rules = effective_rules(&state.rules, &self.service.flag_rules)
            .map(|r| r.rules().iter().map(Rule::to_string).collect())
            .unwrap_or_default();
        let bridge_server = match (&state.bridge, self.service.bridge_addr) {
            (Some(bridge), Some(addr)) => Some(BridgeServerView::new(
                addr.to_string(),
                bridge.invitation_ids().len(),
                bridge.stats(),
            )),
            _ => None,
        };
        ProxyStatusView {
            proxy_addr: self.service.proxy_addr.map(|a| a.to_string()),
            connections_open: live.as_ref().map_or(0, |s| s.connections_open),
            rules,
            sites,
            bridges: bridge_views(&state),
            bridge_server,
        }
    }

    /// The bridges this node uses as a client.
    pub fn bridges(&self) -> Vec<BridgeView> {
        bridge_views(&self.service.state())
    }

    /// Adds a bridge from an invitation code (`bridge add`), saves it and hands it to the running proxy. Adding a
    /// code that is already there changes nothing and answers the bridge as it is.
    pub fn add_bridge(&self, code: &str) -> Result<BridgeView, ApiError> {
        let invitation = Invitation::parse(code).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let id = invitation.secret.id();
        let mut state = self.service.state();
        if !state
            .bridges
            .iter()
            .any(|b| b.invitation.secret == invitation.secret)
        {
            if state.bridges.len() >= MAX_BRIDGES {
                return Err(ApiError::Invalid(format!(
                    "this node already has {MAX_BRIDGES} bridges; remove one first"
                )));
            }
            let mut next = state.bridges.clone();
            next.push(SavedBridge {
                invitation: invitation.clone(),
                added: crate::clock::unix_now(),
            });
            saved::save_bridges(&self.service.file(saved::BRIDGES_FILE), &next)
                .map_err(|e| ApiError::internal("saving the bridge", e))?;
            state.bridges = next;
            if let Some(proxy) = &state.proxy {
                proxy.add_bridge(invitation);
            }
        }
        bridge_views(&state)
            .into_iter()
            .find(|b| b.id == id)
            .ok_or_else(|| ApiError::Internal("the bridge was not stored".into()))
    }

    /// Removes a bridge (by invitation id) from the saved list and from the running proxy.
    pub fn remove_bridge(&self, id: &str) -> Result<(), ApiError> {
        let id = parse_id(id)?;
        let mut state = self.service.state();
        let mut next = state.bridges.clone();
        next.retain(|b| b.invitation.secret.id() != id);
        if next.len() == state.bridges.len() {
            return Err(ApiError::NotFound(format!("no bridge with id {id}")));
        }
        saved::save_bridges(&self.service.file(saved::BRIDGES_FILE), &next)
            .map_err(|e| ApiError::internal("saving the bridges", e))?;
        state.bridges = next;
        if let Some(proxy) = &state.proxy {
            proxy.remove_bridge(&id);
        }
        Ok(())
    }

    /// Makes a new invitation to this node's bridge (`bridge invite`) for clients that will dial `host:port`
    /// (default: the address the bridge listens on, when it is a specific one), saves it, and starts accepting it.
    pub fn invite(
        &self,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Result<InvitationView, ApiError> {
        let mut state = self.service.state();
        let (Some(bridge), Some(listen)) = (&state.bridge, self.service.bridge_addr) else {
            return Err(ApiError::Invalid(
                "this node runs no bridge: start it with `kolokol up --bridge`".into(),
            ));
        };
        let host = match host.map(str::trim).filter(|h| !h.is_empty()) {
            Some(host) => {
                Host::parse(host).map_err(|e| ApiError::Invalid(format!("--host: {e}")))?
            }
            None if listen.ip().is_unspecified() => {
                return Err(ApiError::Invalid(
                    "the bridge listens on every interface, so it cannot tell which address clients reach it \
                     at: pass --host with its public IP address or DNS name"
                        .into(),
                ));
            }
            None => Host::from_ip(listen.ip()),
        };
        let port = match port {
            Some(0) => return Err(ApiError::Invalid("--port must not be 0".into())),
            Some(port) => port,
            None => listen.port(),
        };
        if state.invitations.len() >= MAX_INVITATIONS {
            return Err(ApiError::Invalid(format!(
                "this bridge already has {MAX_INVITATIONS} invitations; revoke some first"
            )));
        }
        let invitation = Invitation::generate(host.clone(), port, bridge.public_key());
        let qr = invitation
            .qr_terminal_string()
            .map_err(|e| ApiError::internal("drawing the QR code", e))?;
        let saved = SavedInvitation {
            secret: invitation.secret.clone(),
            host,
            port,
            created: crate::clock::unix_now(),
        };
        let mut next = state.invitations.clone();
        next.push(saved.clone());
        saved::save_invitations(&self.service.file(saved::INVITATIONS_FILE), &next)
            .map_err(|e| ApiError::internal("saving the invitation", e))?;
        bridge.add_invitation(invitation.secret.clone());
        state.invitations = next;
        Ok(InvitationView {
            id: invitation.secret.id(),
            code: invitation.to_code(),
            qr,
            address: invitation.address(),
            created: saved.created,
        })
    }

    /// The invitations this node's bridge accepts (their ids and addresses, never their secrets).
    pub fn invitations(&self) -> Result<Vec<InvitationInfoView>, ApiError> {
        let state = self.service.state();
        if state.bridge.is_none() {
            return Err(ApiError::Invalid(
                "this node runs no bridge: start it with `kolokol up --bridge`".into(),
            ));
        }
        Ok(state
            .invitations
            .iter()
            .map(|i| InvitationInfoView {
                id: i.secret.id(),
                address: i.address(),
                created: i.created,
            })
            .collect())
    }

    /// Stops accepting an invitation and forgets it (tunnels already open stay up until they close).
    pub fn revoke(&self, id: &str) -> Result<(), ApiError> {
        let id = parse_id(id)?;
        let mut state = self.service.state();
        let mut next = state.invitations.clone();
        next.retain(|i| i.secret.id() != id);
        if next.len() == state.invitations.len() {
            return Err(ApiError::NotFound(format!("no invitation with id {id}")));
        }
        saved::save_invitations(&self.service.file(saved::INVITATIONS_FILE), &next)
            .map_err(|e| ApiError::internal("saving the invitations", e))?;
        state.invitations = next;
        if let Some(bridge) = &state.bridge {
            bridge.revoke_invitation(&id);
        }
        Ok(())
    }

    /// Saves a rule `PATTERN=direct|bridge` (replacing a saved rule for the same pattern) and applies it at once.
    /// Returns the rules in force.
    pub fn add_rule(&self, text: &str) -> Result<Vec<String>, ApiError> {
        let rule = Rule::parse(text).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let mut state = self.service.state();
        let mut next = state.rules.clone();
        next.retain(|r| r.pattern != rule.pattern);
        next.push(rule);
        self.replace_rules(&mut state, next)
    }

    /// Removes the saved rule for a pattern. Returns the rules in force.
    pub fn remove_rule(&self, pattern: &str) -> Result<Vec<String>, ApiError> {
        let pattern = Pattern::parse(pattern).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let mut state = self.service.state();
        let mut next = state.rules.clone();
        next.retain(|r| r.pattern != pattern);
        if next.len() == state.rules.len() {
            return Err(ApiError::NotFound(format!("no saved rule for {pattern}")));
        }
        self.replace_rules(&mut state, next)
    }

    /// Forgets what the proxy learnt about a site (so it is tried direct again). Returns whether anything was known.
    pub fn forget(&self, host: &str) -> Result<bool, ApiError> {
        let host = Host::parse(host.trim()).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let state = self.service.state();
        Ok(state.proxy.as_ref().is_some_and(|p| p.forget(&host)))
    }

    fn replace_rules(&self, state: &mut State, next: Vec<Rule>) -> Result<Vec<String>, ApiError> {
        // Checked as a whole (count, conflicts) before anything is written.
        Rules::new(next.clone()).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let effective = effective_rules(&next, &self.service.flag_rules)
            .map_err(|e| ApiError::Invalid(e.to_string()))?;
        saved::save_rules(&self.service.file(saved::RULES_FILE), &next)
            .map_err(|e| ApiError::internal("saving the rules", e))?;
        state.rules = next;
        if let Some(proxy) = &state.proxy {
            proxy.set_rules(effective.clone());
        }
        Ok(effective.rules().iter().map(Rule::to_string).collect())
    }
}

fn bridge_views(state: &State) -> Vec<BridgeView> {
    let live = state
        .proxy
        .as_ref()
        .map(|p| p.status().bridges)
        .unwrap_or_default();
    state
        .bridges
        .iter()
        .map(|b| {
            let id = b.invitation.secret.id();
            let status = live.iter().find(|s| s.id == id);
            BridgeView::new(id, b.invitation.address(), b.added, status)
        })
        .collect()
}

/// An invitation id: 8 hex digits.
fn parse_id(id: &str) -> Result<String, ApiError> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(ApiError::Invalid(format!(
            "{id:?} is not an invitation id (8 hex digits, as `bridge list` shows)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_ids_are_checked() {
        assert_eq!(parse_id(" 0A1b2C3d ").unwrap(), "0a1b2c3d");
        assert!(parse_id("0a1b2c3").is_err());
        assert!(parse_id("0a1b2c3g").is_err());
        assert!(parse_id("../../etc").is_err());
    }
}
