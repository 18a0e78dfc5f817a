//! Nothing here: the model is `tests/fallback.rs`.
