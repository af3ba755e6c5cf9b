//! The statistics the fleet reports share: median, median absolute deviation, the
//! Mann–Whitney U test (a step), the Mann–Kendall test and the Theil–Sen slope (a creep).
//! Non-finite inputs are ignored everywhere.
