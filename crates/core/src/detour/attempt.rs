//! One proxied connection's way through the routes: a small state machine driven by [`Event`]s.
//!
//! # Invariants
//! - Each route is tried at most once per attempt, so an attempt ends after at most two connects.
//! - A route a user rule forces is the only route tried; with no bridge available only the direct route is tried.
//! - `replay` is set only when the direct route failed after the client was told it was connected (the client may
//!   have sent bytes that the direct route swallowed).
//! - After [`Action::Settled`], [`Action::Fail`] or a bridge [`Action::Relay`] the attempt is final and ignores
//!   further events.

use super::host::Host;
use super::{Failure, Route, RouteReason};

/// What happened on the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The direct TCP connection is open.
    DirectConnected,
    /// The direct route's first answer arrived and is not a block page.
    DirectFirstByte,
    /// The direct route failed.
    DirectFailed(Failure),
    /// The client sent more than the proxy keeps for replay, so switching routes is no longer possible.
    ReplayBufferFull,
    /// A bridge stream to the site is open.
    BridgeOpened,
    /// No bridge could open a stream to the site.
    BridgeFailed,
}

/// What the proxy should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Resolve the name and connect directly.
    ConnectDirect,
    /// Open a stream through a bridge (the bridge resolves the name). With `replay`, first send through it every
    /// byte the client already sent on the failed direct route; drop the direct connection.
    ConnectBridge { replay: bool },
    /// The route is open: tell the client it is connected (if not yet told) and relay. With `watch`, keep a copy of
    /// what the client sends and report how the site answers, since the attempt may still switch to a bridge.
    Relay { route: Route, watch: bool },
    /// The watched direct route proved itself: stop keeping copies and go on relaying.
    Settled(Route),
    /// Give up: an error to the client if it was not yet told it is connected, otherwise close.
    Fail {
        /// How the direct route failed, if it was tried.
        direct: Option<Failure>,
        /// Whether a bridge was tried and failed.
        bridge_failed: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    DirectConnecting,
    DirectWatching,
    Bridging,
    Done(Route),
    Failed,
}

/// One connection's detour state. Made by [`super::Detour::begin`], driven by [`super::Detour::handle`].
#[derive(Clone, Debug)]
pub struct Attempt {
    host: Host,
    state: State,
    reason: RouteReason,
    may_fall_back: bool,
    tried_direct: bool,
    tried_bridge: bool,
    direct_failure: Option<Failure>,
}

impl Attempt {
    pub(super) fn start(
        host: Host,
        route: Route,
        reason: RouteReason,
        may_fall_back: bool,
    ) -> (Attempt, Action) {
        let mut attempt = Attempt {
            host,
            state: State::Failed,
            reason,
            may_fall_back,
            tried_direct: false,
            tried_bridge: false,
            direct_failure: None,
        };
        let action = match route {
            Route::Direct => attempt.go_direct(),
            Route::Bridge => attempt.go_bridge(false),
        };
        (attempt, action)
    }

    /// The site.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Why the attempt started on its first route.
    pub fn reason(&self) -> RouteReason {
        self.reason
    }

    /// The route in use or being tried, `None` once failed.
    pub fn route(&self) -> Option<Route> {
        match self.state {
            State::DirectConnecting | State::DirectWatching => Some(Route::Direct),
            State::Bridging => Some(Route::Bridge),
            State::Done(route) => Some(route),
            State::Failed => None,
        }
    }

    /// Whether the attempt has reached its final route or failed, so no event changes it any more.
    pub fn is_final(&self) -> bool {
        matches!(self.state, State::Done(_) | State::Failed)
    }

    /// Whether the client bytes must still be kept for a possible replay.
    pub fn is_watching(&self) -> bool {
        self.state == State::DirectWatching
    }

    fn can_use_bridge(&self) -> bool {
        self.may_fall_back && !self.tried_bridge
    }

    fn go_direct(&mut self) -> Action {
        self.tried_direct = true;
        self.state = State::DirectConnecting;
        Action::ConnectDirect
    }

    fn go_bridge(&mut self, replay: bool) -> Action {
        self.tried_bridge = true;
        self.state = State::Bridging;
        Action::ConnectBridge { replay }
    }

    fn fail(&mut self) -> Action {
        self.state = State::Failed;
        Action::Fail {
            direct: self.direct_failure,
            bridge_failed: self.tried_bridge,
        }
    }

    /// Advances on `event`; `None` when the event does not fit the current state (it is ignored).
    pub(super) fn handle(&mut self, event: Event) -> Option<Action> {
        let action = match (self.state, event) {
            (State::DirectConnecting, Event::DirectConnected) => {
                let watch = self.can_use_bridge();
                self.state = if watch {
                    State::DirectWatching
                } else {
                    State::Done(Route::Direct)
                };
                Action::Relay {
                    route: Route::Direct,
                    watch,
                }
            }
            (State::DirectConnecting | State::DirectWatching, Event::DirectFailed(failure)) => {
                let replay = self.state == State::DirectWatching;
                self.direct_failure = Some(failure);
                if self.can_use_bridge() {
                    self.go_bridge(replay)
                } else {
                    self.fail()
                }
            }
            (State::DirectWatching, Event::DirectFirstByte | Event::ReplayBufferFull) => {
                self.state = State::Done(Route::Direct);
                Action::Settled(Route::Direct)
            }
            (State::Bridging, Event::BridgeOpened) => {
                self.state = State::Done(Route::Bridge);
                Action::Relay {
                    route: Route::Bridge,
                    watch: false,
                }
            }
            (State::Bridging, Event::BridgeFailed) => {
                if self.may_fall_back && !self.tried_direct {
                    // The site was remembered as blocked but no bridge works: the direct route may work again.
                    self.may_fall_back = false;
                    self.go_direct()
                } else {
                    self.fail()
                }
            }
            _ => return None,
        };
        Some(action)
    }
}
