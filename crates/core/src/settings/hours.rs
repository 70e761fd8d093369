//! Working hours in the tenant's own time zone.

use chrono::{DateTime, Datelike, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// IANA name, such as `Europe/Berlin`.
    pub timezone: String,
    pub start: NaiveTime,
    pub end: NaiveTime,
    /// ISO weekdays: 1 is Monday, 7 is Sunday.
    pub days: Vec<u8>,
}

impl Default for WorkingHours {
    fn default() -> Self {
        Self {
            timezone: "UTC".into(),
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
            end: NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default(),
            days: vec![1, 2, 3, 4, 5],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?}")]
pub struct UnknownTimezone(pub String);

impl WorkingHours {
    /// Whether `at` falls inside working hours. A window whose end is before its start
    /// runs overnight and belongs to the day it starts on.
    pub fn is_open(&self, at: DateTime<Utc>) -> Result<bool, UnknownTimezone> {
        let tz: Tz = self
            .timezone
            .parse()
            .map_err(|_| UnknownTimezone(self.timezone.clone()))?;
        let local = at.with_timezone(&tz);
        let t = local.time();
        let day = u8::try_from(local.weekday().number_from_monday()).unwrap_or(0);
        let works = |d: u8| self.days.contains(&d);
        Ok(if self.start <= self.end {
            works(day) && self.start <= t && t < self.end
        } else {
            let yesterday = if day == 1 { 7 } else { day - 1 };
            (works(day) && t >= self.start) || (works(yesterday) && t < self.end)
        })
    }

    /// The start of the night that `at` belongs to, as a key: "once per night" means once
    /// per value of this. Nights are named by the local date on which they end.
    pub fn night_key(&self, at: DateTime<Utc>) -> Result<String, UnknownTimezone> {
        let tz: Tz = self
            .timezone
            .parse()
            .map_err(|_| UnknownTimezone(self.timezone.clone()))?;
        let local = at.with_timezone(&tz);
        let date = if local.time() >= self.end {
            local.date_naive().succ_opt().unwrap_or(local.date_naive())
        } else {
            local.date_naive()
        };
        Ok(date.to_string())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn berlin() -> WorkingHours {
        WorkingHours {
            timezone: "Europe/Berlin".into(),
            ..Default::default()
        }
    }

    #[test]
    fn uses_the_tenants_time_zone_and_days() {
        let h = berlin();
        // Monday 2026-11-23 08:30 UTC is 09:30 in Berlin.
        assert_eq!(
            h.is_open(Utc.with_ymd_and_hms(2026, 11, 23, 8, 30, 0).unwrap()),
            Ok(true)
        );
        assert_eq!(
            h.is_open(Utc.with_ymd_and_hms(2026, 11, 23, 7, 30, 0).unwrap()),
            Ok(false)
        );
        assert_eq!(
            h.is_open(Utc.with_ymd_and_hms(2026, 11, 23, 17, 0, 0).unwrap()),
            Ok(false)
        );
        // Sunday.
        assert_eq!(
            h.is_open(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()),
            Ok(false)
        );
    }

    #[test]
    fn overnight_windows_and_night_keys() {
        let h = WorkingHours {
            start: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
            ..Default::default()
        };
        assert_eq!(
            h.is_open(Utc.with_ymd_and_hms(2026, 11, 23, 23, 0, 0).unwrap()),
            Ok(true)
        );
        assert_eq!(
            h.is_open(Utc.with_ymd_and_hms(2026, 11, 24, 5, 0, 0).unwrap()),
            Ok(true)
        );
        let b = berlin();
        let evening = b
            .night_key(Utc.with_ymd_and_hms(2026, 11, 23, 20, 0, 0).unwrap())
            .unwrap();
        let morning = b
            .night_key(Utc.with_ymd_and_hms(2026, 11, 24, 5, 0, 0).unwrap())
            .unwrap();
        assert_eq!(evening, morning);
        assert!(
            WorkingHours {
                timezone: "Mars/Base".into(),
                ..Default::default()
            }
            .is_open(Utc::now())
            .is_err()
        );
    }
}
