//! What one `apply` must do, the same for every backend: which instances to start and which
//! to retire once the new ones are healthy.

use deis_core::error::{Error, Result};
use deis_core::scheduler::AppSpec;
use deis_core::ValidationError;
use std::collections::BTreeMap;

/// A live instance as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) process_type: String,
    pub(crate) num: u32,
    pub(crate) release: u64,
}

/// The plan: start `start` (type, number) on the spec's release; once every one of them is
/// healthy, retire the instances at the indexes `retire` of the current list.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) start: Vec<(String, u32)>,
    pub(crate) retire: Vec<usize>,
}

/// Plans the move from `current` to `spec`: an instance on another release is replaced
/// under the same number; scale-down retires the highest numbers; scale-up takes the
/// numbers after the highest kept one.
pub(crate) fn plan(spec: &AppSpec, current: &[Slot]) -> Plan {
    let mut plan = Plan::default();
    let mut by_type: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, slot) in current.iter().enumerate() {
        by_type
            .entry(slot.process_type.as_str())
            .or_default()
            .push(index);
    }
    // Numbers that stay in use, per type: kept as they are or replaced under the same number.
    let mut used: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (process_type, indexes) in &mut by_type {
        indexes.sort_by_key(|i| (current[*i].num, current[*i].release));
        let wanted = spec.formation.get(*process_type).copied().unwrap_or(0) as usize;
        for (position, index) in indexes.iter().enumerate() {
            let slot = &current[*index];
            if position >= wanted {
                plan.retire.push(*index);
                continue;
            }
            used.entry(process_type).or_default().push(slot.num);
            if slot.release != spec.release {
                plan.start.push((process_type.to_string(), slot.num));
                plan.retire.push(*index);
            }
        }
    }
    for (process_type, wanted) in &spec.formation {
        let taken = used.get(process_type.as_str()).cloned().unwrap_or_default();
        let highest = taken.iter().copied().max().unwrap_or(0);
        let missing = (*wanted as usize).saturating_sub(taken.len());
        for num in (highest + 1..).take(missing) {
            plan.start.push((process_type.clone(), num));
        }
    }
    plan
}

/// A name used in paths, cgroups and container names must be a plain name.
pub(crate) fn check_name(field: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !value.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(ValidationError::new(
            field,
            "invalid",
            format!("{value:?} is not a valid {field}: use letters, digits, '-' and '_'"),
        )))
    }
}

/// The checks every backend makes before acting on a spec.
pub(crate) fn check_spec(spec: &AppSpec) -> Result<()> {
    check_name("app", &spec.app)?;
    for process_type in spec.formation.keys() {
        check_name("type", process_type)?;
    }
    if let Some(check) = &spec.healthcheck {
        if !check.url.starts_with('/') || check.url.chars().any(|c| c.is_whitespace()) {
            return Err(Error::Invalid(ValidationError::new(
                "HEALTHCHECK_URL",
                "invalid",
                "the health check URL must be a path starting with '/' without spaces",
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(release: u64, formation: &[(&str, u32)]) -> AppSpec {
        let mut spec = AppSpec::new("go", release);
        spec.formation = formation.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        spec
    }

    fn slot(process_type: &str, num: u32, release: u64) -> Slot {
        Slot {
            process_type: process_type.into(),
            num,
            release,
        }
    }

    #[test]
    fn scale_up_takes_the_next_numbers() {
        let current = [slot("web", 1, 2)];
        let plan = plan(&spec(2, &[("web", 3), ("worker", 1)]), &current);
        assert_eq!(
            plan.start,
            [
                ("web".to_string(), 2),
                ("web".to_string(), 3),
                ("worker".to_string(), 1)
            ]
        );
        assert!(plan.retire.is_empty());
    }

    #[test]
    fn scale_down_retires_the_highest_numbers() {
        let current = [slot("web", 3, 2), slot("web", 1, 2), slot("web", 2, 2)];
        let plan = plan(&spec(2, &[("web", 1)]), &current);
        assert!(plan.start.is_empty());
        assert_eq!(plan.retire, [2, 0], "web.2 and web.3");
    }

    #[test]
    fn a_new_release_replaces_under_the_same_numbers() {
        let current = [slot("web", 1, 2), slot("web", 2, 2), slot("worker", 1, 2)];
        let plan = plan(&spec(3, &[("web", 2)]), &current);
        assert_eq!(plan.start, [("web".to_string(), 1), ("web".to_string(), 2)]);
        assert_eq!(plan.retire, [0, 1, 2]);
    }

    #[test]
    fn the_same_spec_changes_nothing() {
        let current = [slot("web", 1, 2), slot("web", 2, 2)];
        assert_eq!(plan(&spec(2, &[("web", 2)]), &current), Plan::default());
    }

    #[test]
    fn names_must_be_plain() {
        assert!(check_name("app", "go-app_2").is_ok());
        for bad in ["", "../x", "a/b", "-x", "a b", "ü"] {
            assert!(check_name("app", bad).is_err(), "{bad:?}");
        }
    }
}
