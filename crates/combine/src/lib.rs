//! Online randomized combination of CDPs and CIPs (De-DA), independent of any tensor engine.
