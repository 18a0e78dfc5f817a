//! The latency histogram's buckets: 8 per power of two of nanoseconds (each at most 12.5%
//! wide), from 1 ns to about 18 minutes, as index arithmetic with no table.

/// Sub-buckets per power of two.
pub(crate) const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Values below this are their own bucket.
pub(crate) const LINEAR: u64 = 2 * SUB as u64;
/// Highest power of two covered: 2^40 ns ≈ 18 minutes; longer calls land in the last bucket.
const MAX_EXP: u32 = 40;
pub(crate) const BUCKETS: usize = LINEAR as usize + (MAX_EXP as usize - SUB_BITS as usize) * SUB;

#[inline]
pub(crate) fn bucket_of(ns: u64) -> usize {
    if ns < LINEAR {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros(); // ≥ SUB_BITS + 1
    if exp > MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = ((ns >> (exp - SUB_BITS)) as usize) & (SUB - 1);
    LINEAR as usize + (exp - SUB_BITS - 1) as usize * SUB + sub
}

/// The largest value that falls in bucket `i` (inclusive).
pub(crate) fn upper_bound(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    if i == BUCKETS - 1 {
        return u64::MAX;
    }
    let j = i - LINEAR as usize;
    let exp = (j / SUB) as u32 + SUB_BITS + 1;
    let sub = (j % SUB) as u64;
    let width = 1u64 << (exp - SUB_BITS);
    (1u64 << exp) + (sub + 1) * width - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_whose_bounds_hold_it() {
        let mut previous_upper = None;
        for i in 0..BUCKETS - 1 {
            let upper = upper_bound(i);
            if let Some(p) = previous_upper {
                assert_eq!(upper_bound(i - 1), p);
                assert_eq!(bucket_of(p + 1), i, "first value of bucket {i}");
            }
            assert_eq!(bucket_of(upper), i, "last value of bucket {i}");
            previous_upper = Some(upper);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_of(1 << 41), BUCKETS - 1);
    }

    #[test]
    fn buckets_are_at_most_an_eighth_wide() {
        for i in LINEAR as usize..BUCKETS - 1 {
            let (low, high) = (upper_bound(i - 1) + 1, upper_bound(i));
            assert!((high - low + 1) * 8 <= low, "bucket {i}: {low}..={high}");
        }
    }
}
