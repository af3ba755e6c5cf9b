//! The drift alerts' use cases, a third `impl` of [`Coordinator`]: listing them, a person
//! acknowledging or dismissing one. Time is an input, as everywhere in the core.

use crate::domain::DomainError;
use crate::fleet::{AlertRecord, AlertState};
use crate::model::Millis;
use crate::store::{AlertUpdate, Store};
use crate::Error;

use super::core::Coordinator;

/// The most bytes of a note a person attaches to an acknowledgement or a dismissal.
pub const MAX_NOTE_LEN: usize = 1024;

/// The fewest characters of an alert id a person may type: `fleetctl alerts list` shows this
/// many, and `ack`/`dismiss` accept any unique prefix at least this long.
pub const MIN_ID_PREFIX: usize = 8;

/// The states `ListAlerts` shows when asked for none: the alerts that stand.
pub const STANDING: [AlertState; 2] = [AlertState::Open, AlertState::Acknowledged];

/// What a person does with an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertAction {
    /// Acknowledge an open alert.
    Ack,
    /// Mark an open or acknowledged alert a false alarm.
    Dismiss,
}

impl AlertAction {
    /// The states it applies to.
    pub fn from_states(self) -> &'static [AlertState] {
        match self {
            AlertAction::Ack => &[AlertState::Open],
            AlertAction::Dismiss => &[AlertState::Open, AlertState::Acknowledged],
        }
    }

    /// The state it leaves the alert in.
    pub fn to_state(self) -> AlertState {
        match self {
            AlertAction::Ack => AlertState::Acknowledged,
            AlertAction::Dismiss => AlertState::Dismissed,
        }
    }

    /// The past participle, for messages ("acknowledged", "dismissed").
    pub fn done(self) -> &'static str {
        match self {
            AlertAction::Ack => "acknowledged",
            AlertAction::Dismiss => "dismissed",
        }
    }
}

/// The state names of a `ListAlerts` request; `field` names the request field in an error.
pub fn parse_states(field: &str, names: &[String]) -> Result<Vec<AlertState>, DomainError> {
    names
        .iter()
        .map(|n| {
            AlertState::parse(n).ok_or_else(|| {
                let known: Vec<&str> = AlertState::ALL.iter().map(|s| s.as_str()).collect();
                DomainError::InvalidRequest(format!(
                    "field '{field}': {} is not an alert state (expected one of {})",
                    fleetcal_proto::quote::quoted(n),
                    known.join(", ")
                ))
            })
        })
        .collect()
}

impl<S: Store> Coordinator<S> {
    /// Alerts in any of `states` (the standing ones, open and acknowledged, when empty),
    /// newest first.
    pub async fn alerts(&self, states: &[AlertState]) -> Result<Vec<AlertRecord>, Error> {
        let states = if states.is_empty() {
            &STANDING[..]
        } else {
            states
        };
        self.store.alerts(states).await
    }

    /// A person acknowledges or dismisses alert `id` at `now`, with a note; returns the alert
    /// as it is afterwards. `UnknownAlert` for an unknown id; `AlertNotActionable` when its
    /// state does not allow the action.
    pub async fn act_on_alert(
        &self,
        id: &str,
        action: AlertAction,
        note: &str,
        now: Millis,
    ) -> Result<AlertRecord, Error> {
        if note.len() > MAX_NOTE_LEN {
            return Err(Error::from(DomainError::InvalidRequest(format!(
                "field 'note': {} bytes, longer than {MAX_NOTE_LEN}",
                note.len()
            ))));
        }
        let alert = self.resolve_alert(id).await?;
        let id = alert.id.as_str();
        let refused = |state: AlertState| {
            Error::from(DomainError::AlertNotActionable {
                id: id.to_string(),
                state: state.as_str(),
                action: action.done(),
            })
        };
        if !action.from_states().contains(&alert.state) {
            return Err(refused(alert.state));
        }
        let note = note.trim();
        let message = if note.is_empty() {
            format!("{}; {} by a person", alert.message, action.done())
        } else {
            format!("{}; {}: {note}", alert.message, action.done())
        };
        let update = AlertUpdate {
            state: action.to_state(),
            current: None,
            change_pct: None,
            confirm_campaign_id: None,
            message,
            at: now,
        };
        if !self
            .store
            .update_alert(id, action.from_states(), &update)
            .await?
        {
            // Changed between the read and the update: say what it is now.
            let now_state = self.require_alert(id).await?.state;
            return Err(refused(now_state));
        }
        tracing::info!(alert = %id, action = action.done(), "alert updated by a person");
        self.require_alert(id).await
    }

    /// The alert `id` names: its full id, or a unique prefix of at least [`MIN_ID_PREFIX`]
    /// characters. `UnknownAlert` when none matches; `InvalidRequest` naming the prefix when
    /// several do.
    async fn resolve_alert(&self, id: &str) -> Result<AlertRecord, Error> {
        if let Some(alert) = self.store.alert(id).await? {
            return Ok(alert);
        }
        if id.chars().count() < MIN_ID_PREFIX {
            return Err(Error::from(DomainError::UnknownAlert(id.to_string())));
        }
        let all = self.store.alerts(&AlertState::ALL).await?;
        match pick_by_prefix(&all, id) {
            Ok(alert) => Ok(alert.clone()),
            Err(0) => Err(Error::from(DomainError::UnknownAlert(id.to_string()))),
            Err(n) => Err(Error::from(DomainError::InvalidRequest(format!(
                "field 'id': {} is the start of {n} alert ids; give more of it",
                fleetcal_proto::quote::quoted(id)
            )))),
        }
    }

    async fn require_alert(&self, id: &str) -> Result<AlertRecord, Error> {
        self.store
            .alert(id)
            .await?
            .ok_or_else(|| Error::from(DomainError::UnknownAlert(id.to_string())))
    }
}

/// The one alert whose id starts with `prefix`, or how many do (0 or more than one).
fn pick_by_prefix<'a>(alerts: &'a [AlertRecord], prefix: &str) -> Result<&'a AlertRecord, usize> {
    let mut found = alerts.iter().filter(|a| a.id.starts_with(prefix));
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(0),
        (Some(_), Some(_)) => Err(2 + found.count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_picks_one_alert_or_says_how_many_match() {
        let alert = |id: &str| AlertRecord {
            id: id.into(),
            agent_id: "a".into(),
            hostname: "host-a".into(),
            group_key: "g".into(),
            framework: "numpy".into(),
            figure: "gemm_peak fp32".into(),
            baseline: 100.0,
            current: 80.0,
            change_pct: -20.0,
            kind: "step".into(),
            began_at: 0,
            run_id: "r".into(),
            confirm_campaign_id: None,
            state: AlertState::Open,
            created_at: 0,
            updated_at: 0,
            message: String::new(),
        };
        let alerts = [
            alert("abcdef01-1"),
            alert("abcdef01-2"),
            alert("99999999-x"),
        ];
        assert_eq!(pick_by_prefix(&alerts, "9999999").unwrap().id, "99999999-x");
        assert_eq!(
            pick_by_prefix(&alerts, "abcdef01-2").unwrap().id,
            "abcdef01-2"
        );
        assert_eq!(pick_by_prefix(&alerts, "abcdef01").unwrap_err(), 2);
        assert_eq!(pick_by_prefix(&alerts, "zzzz").unwrap_err(), 0);
    }

    #[test]
    fn states_parse_by_name_and_an_unknown_one_is_named() {
        let names = ["open".to_string(), "resolved".to_string()];
        assert_eq!(
            parse_states("states", &names).unwrap(),
            [AlertState::Open, AlertState::Resolved]
        );
        let e = parse_states("states", &["closed".to_string()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("field 'states': 'closed'") && e.contains("unconfirmed"),
            "{e}"
        );
    }

    #[test]
    fn ack_takes_open_alerts_and_dismiss_open_or_acknowledged_ones() {
        assert_eq!(AlertAction::Ack.from_states(), [AlertState::Open]);
        assert_eq!(AlertAction::Ack.to_state(), AlertState::Acknowledged);
        assert_eq!(
            AlertAction::Dismiss.from_states(),
            [AlertState::Open, AlertState::Acknowledged]
        );
        assert_eq!(AlertAction::Dismiss.to_state(), AlertState::Dismissed);
        for a in [AlertAction::Ack, AlertAction::Dismiss] {
            assert!(
                !a.from_states().contains(&a.to_state()),
                "{a:?} twice is refused"
            );
        }
    }
}
