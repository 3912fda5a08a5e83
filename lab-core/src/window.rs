//! Maintenance windows: when reboots may happen, e.g. `"Sat 02:00-05:00"`.
//!
//! A window is a set of days and a time range in the controller's local
//! time: `"Sat 02:00-05:00"`, `"Sat,Sun 01:00-06:00"`, `"Mon-Fri 22:00-06:00"`
//! (a range past midnight belongs to the day it starts on) or
//! `"daily 03:00-04:00"`. Time is passed in, so tests inject their clock.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Duration, NaiveDateTime, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

/// A weekly maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Window {
    text: String,
    /// Days the window opens on, Monday = 0.
    days: [bool; 7],
    start: NaiveTime,
    end: NaiveTime,
}

/// A window expression that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("maintenance window \"{text}\": {reason}; write it as DAYS HH:MM-HH:MM, e.g. \"Sat 02:00-05:00\", \"Mon-Fri 22:00-06:00\" or \"daily 03:00-04:00\"")]
pub struct WindowError {
    text: String,
    reason: String,
}

const DAYS: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

/// A day by its three-letter or full English name, any case; Monday = 0.
fn day(text: &str) -> Option<usize> {
    let lower = text.trim().to_ascii_lowercase();
    DAYS.iter().position(|(short, full)| lower == *short || lower == *full)
}

impl FromStr for Window {
    type Err = WindowError;

    fn from_str(text: &str) -> Result<Window, WindowError> {
        let err = |reason: &str| WindowError { text: text.to_string(), reason: reason.to_string() };
        let (days_text, range) = text.trim().split_once(char::is_whitespace).ok_or_else(|| err("no time range"))?;
        let mut days = [false; 7];
        if matches!(days_text.to_ascii_lowercase().as_str(), "daily" | "*") {
            days = [true; 7];
        } else {
            for part in days_text.split(',') {
                match part.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) =
                            (day(a).ok_or_else(|| err("unknown day"))?, day(b).ok_or_else(|| err("unknown day"))?);
                        let mut d = a;
                        loop {
                            days[d] = true;
                            if d == b {
                                break;
                            }
                            d = (d + 1) % 7;
                        }
                    }
                    None => days[day(part).ok_or_else(|| err("unknown day"))?] = true,
                }
            }
        }
        let (start, end) =
            range.trim().split_once('-').ok_or_else(|| err("the time range needs a start and an end"))?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| err("times are HH:MM"));
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(err("the window is empty"));
        }
        Ok(Window { text: text.trim().to_string(), days, start, end })
    }
}

impl TryFrom<String> for Window {
    type Error = WindowError;
    fn try_from(text: String) -> Result<Window, WindowError> {
        text.parse()
    }
}

impl From<Window> for String {
    fn from(window: Window) -> String {
        window.text
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Window {
    fn opens_on(&self, weekday: Weekday) -> bool {
        self.days[weekday.num_days_from_monday() as usize]
    }

    /// True when `now` (local time) is inside the window.
    pub fn contains(&self, now: NaiveDateTime) -> bool {
        let t = now.time();
        if self.start < self.end {
            self.opens_on(now.weekday()) && t >= self.start && t < self.end
        } else {
            // Past midnight: from start on the opening day, or before end on the day after.
            (self.opens_on(now.weekday()) && t >= self.start) || (self.opens_on(now.weekday().pred()) && t < self.end)
        }
    }

    /// The next moment at or after `now` when the window is open.
    pub fn next_open(&self, now: NaiveDateTime) -> NaiveDateTime {
        if self.contains(now) {
            return now;
        }
        // The next opening is within the coming week.
        (0..=7)
            .map(|d| (now.date() + Duration::days(d)).and_time(self.start))
            .find(|at| *at >= now && self.opens_on(at.weekday()))
            .unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, min, 0).unwrap()
    }

    #[test]
    fn saturday_night() {
        let w: Window = "Sat 02:00-05:00".parse().unwrap();
        // 2026-11-28 is a Saturday.
        assert!(w.contains(at(2026, 11, 28, 2, 0)));
        assert!(w.contains(at(2026, 11, 28, 4, 59)));
        assert!(!w.contains(at(2026, 11, 28, 5, 0)));
        assert!(!w.contains(at(2026, 11, 27, 3, 0)));
        assert_eq!(w.next_open(at(2026, 11, 25, 12, 0)), at(2026, 11, 28, 2, 0));
        assert_eq!(w.next_open(at(2026, 11, 28, 6, 0)), at(2026, 12, 5, 2, 0));
    }

    #[test]
    fn past_midnight_and_day_ranges() {
        let w: Window = "Mon-Fri 22:00-06:00".parse().unwrap();
        assert!(w.contains(at(2026, 11, 27, 23, 0)), "Friday night");
        assert!(w.contains(at(2026, 11, 28, 5, 0)), "early Saturday belongs to Friday's window");
        assert!(!w.contains(at(2026, 11, 29, 5, 0)), "early Sunday: Saturday opens no window");
        let daily: Window = "daily 03:00-04:00".parse().unwrap();
        assert!(daily.contains(at(2026, 11, 29, 3, 30)));
        let weekend: Window = "sat,sunday 01:00-02:00".parse().unwrap();
        assert!(weekend.contains(at(2026, 11, 29, 1, 30)));
    }

    #[test]
    fn bad_windows_say_how_to_write_one() {
        assert_eq!(
            "Caturday 02:00-05:00".parse::<Window>().unwrap_err().to_string(),
            "maintenance window \"Caturday 02:00-05:00\": unknown day; write it as DAYS HH:MM-HH:MM, e.g. \"Sat 02:00-05:00\", \"Mon-Fri 22:00-06:00\" or \"daily 03:00-04:00\""
        );
        assert!("Sat 2am-5am".parse::<Window>().unwrap_err().to_string().contains("times are HH:MM"));
        assert!("Sat".parse::<Window>().unwrap_err().to_string().contains("no time range"));
        assert!("Sat 02:00-02:00".parse::<Window>().unwrap_err().to_string().contains("empty"));
    }
}
