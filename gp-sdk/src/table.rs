//! Reads and overwrites of the context's values in the table a host hands the plugin
//! ([`gp_core::CallTable`], from gp-core 0.1.3 on), without a call into the host.

use gp_core::{CallTable, Value};

/// The value of `key`, if the table holds it. `None` says only that the table does not: the
/// host may still hold a value for `key` elsewhere.
#[inline(always)]
pub(crate) fn find<'t>(table: &'t CallTable, key: &str) -> Option<&'t Value> {
    find_where(table, |slot_key| gp_core::same_key(slot_key, key))
}

/// The value of `key` to overwrite in place, if the table holds `key` and the host lets the
/// plugin overwrite (else the host stores it).
#[inline(always)]
pub(crate) fn find_mut<'t>(table: &'t mut CallTable, key: &str) -> Option<&'t mut Value> {
    if !table.overwrite {
        return None;
    }
    // SAFETY: as in `find_where`; and `overwrite` set is the host's leave to change a slot's
    // value (never the slots themselves). The `&'t mut CallTable` comes from the context's
    // `&mut self`, so no reference into the slots from an earlier `find` is alive, and none
    // of the context's methods runs while this one is.
    let slots = unsafe { table.values.as_mut() }.as_mut_slice();
    slots
        .iter_mut()
        .find(|slot| slot.has_key(key))
        .map(|slot| &mut slot.value)
}

/// The value of the first key `is_key` accepts, if the table holds one (for a key the caller
/// does not hold as one string; [`find`] is this for one that it does).
#[inline(always)]
pub(crate) fn find_where(table: &CallTable, is_key: impl Fn(&str) -> bool) -> Option<&Value> {
    // SAFETY: the host keeps `values` valid for the whole call (`CallTable`'s contract), and
    // the slots do not move while the `&CallTable` (borrowed from the plugin's `Context`)
    // lives: only a call through the context's `&mut self` methods can move them.
    let slots = unsafe { table.values.as_ref() }.as_slice();
    slots
        .iter()
        .find(|slot| is_key(slot.key.as_str()))
        .map(|slot| &slot.value)
}

/// Whether the table holds no value: then the host may hold any number elsewhere (see
/// [`CallTable::values`]).
#[inline(always)]
pub(crate) fn is_empty(table: &CallTable) -> bool {
    // SAFETY: as in `find_where`.
    unsafe { table.values.as_ref() }.is_empty()
}
