//! Timestamps in the format Deis v1 puts on the wire.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The wire format of Deis v1 timestamps: `2014-01-01T00:00:00UTC`.
pub const DEIS_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SUTC";

/// A point in time, kept with full precision and written as Deis v1 wrote it.
///
/// Reading accepts the Deis format and RFC 3339, so records written by other tools load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// The current time, to the microsecond (the precision every store keeps).
    pub fn now() -> Self {
        Timestamp(Utc::now().trunc_subsecs(6))
    }

    /// Parses the Deis format or RFC 3339.
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, DEIS_TIME_FORMAT) {
            return Some(Timestamp(naive.and_utc()));
        }
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| Timestamp(t.with_timezone(&Utc)))
    }

    /// Microseconds since the Unix epoch, for storage backends that keep integers.
    pub fn as_micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// The inverse of [`Timestamp::as_micros`].
    pub fn from_micros(micros: i64) -> Self {
        Timestamp(DateTime::from_timestamp_micros(micros).unwrap_or_default())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format(DEIS_TIME_FORMAT))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp: {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_the_deis_format() {
        let t = Timestamp::parse("2014-01-01T00:00:00UTC").unwrap();
        assert_eq!(t.to_string(), "2014-01-01T00:00:00UTC");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2014-01-01T00:00:00UTC\"");
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn reads_rfc3339_and_rejects_garbage() {
        assert!(Timestamp::parse("2014-01-01T00:00:00Z").is_some());
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(serde_json::from_str::<Timestamp>("\"nope\"").is_err());
    }

    #[test]
    fn micros_round_trip() {
        let t = Timestamp::now();
        assert_eq!(Timestamp::from_micros(t.as_micros()), t);
    }
}
