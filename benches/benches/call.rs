//! The cost of one plugin call, from the host's `Executor` down to a bare hash map.
//!
//! Every benchmark runs against a context prepared once with `n = 0`; the get/set ones
//! increment it on every iteration. See `benches/README.md` for the figures.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use gp_benches::{BenchPlugins, GETSET, NOOP, RAW_GETSET_SYMBOL, RAW_NOOP_SYMBOL, TYPED};
use gp_host::Context;
use gp_sdk::__private::{CallTable, ExecuteResult, HostContextMut, Tabled};
use rustc_hash::FxHashMap;

/// The body of `bench-getset`, compiled into this binary as well.
#[path = "../plugins/getset/src/body.rs"]
mod body;

/// The body of `bench-noop`.
fn noop(ctx: &mut gp_sdk::Context<'_>) -> gp_sdk::Result {
    let _ = ctx;
    Ok(())
}

/// The type of `gp_bench_raw_getset` and `gp_bench_raw_noop`: a plugin's `call` entry.
type RawEntry = extern "C" fn(HostContextMut<'_>, CallTable) -> ExecuteResult;

/// A host context holding `n = 0`.
fn host_context() -> Context {
    let mut ctx = Context::new();
    ctx.set("n", 0);
    ctx
}

fn n(ctx: &Context) -> Option<i64> {
    ctx.get("n").and_then(|v| v.as_i64())
}

/// Runs `body` in-process on `ctx`, seen as a plugin sees it under this host (the ABI trait
/// object and the table of the context's values).
fn in_process(
    ctx: &mut Context,
    body: fn(&mut gp_sdk::Context<'_>) -> gp_sdk::Result,
) -> gp_sdk::Result {
    gp_host::__private::with_call_table(ctx, "bench", |host, table| {
        // SAFETY: the table came with `host`, from the host, for this call.
        let mut ctx = unsafe { gp_sdk::Context::__with_table(host, table) };
        body(&mut ctx)
    })
}

/// Runs `body` in-process on `ctx` as a plugin sees it under a host built before gp-core
/// 0.1.3: through the ABI trait object alone.
fn in_process_vtable(
    ctx: &mut Context,
    body: fn(&mut gp_sdk::Context<'_>) -> gp_sdk::Result,
) -> gp_sdk::Result {
    gp_host::__private::with_host_context(ctx, "bench", |host| {
        let mut ctx = gp_sdk::Context::__new(host);
        body(&mut ctx)
    })
}

// Long: the call benchmark table, one case after another, each with its reason.
fn execute(c: &mut Criterion) {
    let plugins = BenchPlugins::get();
    let noop_executor = plugins.executor(NOOP);
    let getset_executor = plugins.executor(GETSET);

    let library_path = plugins.installed_library(GETSET);
    // SAFETY: the library is bench-getset, built from this workspace by `BenchPlugins` and
    // already loaded (and verified) by the manager, so opening it again runs no initialiser
    // that has not run; it stays loaded while `library` lives, to the end of `execute`.
    let library = unsafe { libloading::Library::new(&library_path) }
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", library_path.display()));
    // SAFETY: `gp_bench_raw_getset` is defined in benches/plugins/getset/src/lib.rs with
    // exactly the signature `RawEntry`, against the same gp-core as this binary.
    let raw: RawEntry = *unsafe { library.get::<RawEntry>(RAW_GETSET_SYMBOL.as_bytes()) }
        .unwrap_or_else(|e| panic!("{RAW_GETSET_SYMBOL}: {e}"));
    let noop_path = plugins.installed_library(NOOP);
    // SAFETY: as above, for bench-noop.
    let noop_library = unsafe { libloading::Library::new(&noop_path) }
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", noop_path.display()));
    // SAFETY: `gp_bench_raw_noop` is defined in benches/plugins/noop/src/lib.rs with exactly
    // the signature `RawEntry`.
    let raw_noop: RawEntry = *unsafe { noop_library.get::<RawEntry>(RAW_NOOP_SYMBOL.as_bytes()) }
        .unwrap_or_else(|e| panic!("{RAW_NOOP_SYMBOL}: {e}"));

    // As a Manager does when it loads a library: the plugin then keeps no per-call state of
    // its own (see gp_core::HostServices), so the raw calls measure what the executor's do.
    for path in [&library_path, &noop_path] {
        gp_host::__private::bind_host(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    // Each way of calling the body must really run it once per call.
    let mut check = host_context();
    getset_executor.execute(&mut check).expect("bench-getset");
    in_process(&mut check, body::getset).expect("in-process getset");
    in_process_vtable(&mut check, body::getset).expect("in-process getset, vtable");
    let outcome =
        gp_host::__private::with_call_table(&mut check, "bench", |host, table| raw(host, table));
    assert!(outcome.is_ok(), "raw getset failed");
    let outcome = gp_host::__private::with_call_table(&mut check, "bench", |host, table| {
        // SAFETY: as in `in_process`.
        gp_sdk::__private::execute(unsafe { Tabled::new(host, table) }, body::getset)
    });
    assert!(outcome.is_ok(), "guarded in-process getset failed");
    assert_eq!(n(&check), Some(5));
    noop_executor.execute(&mut check).expect("bench-noop");
    in_process(&mut check, noop).expect("in-process noop");
    assert_eq!(n(&check), Some(5));

    let mut group = c.benchmark_group("execute");
    group.measurement_time(Duration::from_secs(3));

    // `.is_ok()` here too: black-boxing a whole `Result<(), gp_host::Error>` copies the error
    // enum byte by byte (30-40 ns) on every iteration, a cost of the bench, not of the call.
    let mut ctx = host_context();
    group.bench_function("noop/executor", |b| {
        b.iter(|| noop_executor.execute(black_box(&mut ctx)).is_ok())
    });

    let mut ctx = host_context();
    group.bench_function("noop/raw_fn_pointer", |b| {
        b.iter(|| {
            gp_host::__private::with_call_table(black_box(&mut ctx), "bench", |host, table| {
                raw_noop(host, table).is_ok()
            })
        })
    });

    let mut ctx = host_context();
    group.bench_function("noop/in_process", |b| {
        b.iter(|| in_process(black_box(&mut ctx), noop))
    });

    let mut ctx = host_context();
    group.bench_function("getset/executor", |b| {
        b.iter(|| getset_executor.execute(black_box(&mut ctx)).is_ok())
    });

    let mut ctx = host_context();
    group.bench_function("getset/raw_fn_pointer", |b| {
        // `.is_ok()`: black-boxing the whole 48-byte `RResult` compiles to byte-by-byte
        // copies (~12 ns) that the executor does not pay (it matches on the result in place).
        b.iter(|| {
            gp_host::__private::with_call_table(black_box(&mut ctx), "bench", |host, table| {
                raw(host, table).is_ok()
            })
        })
    });

    // The SDK's guard (`catch_unwind` and the in-call flag) around the in-process body: what
    // the raw function pointer runs, minus the FFI hop into another library.
    let mut ctx = host_context();
    group.bench_function("getset/in_process_guarded", |b| {
        b.iter(|| {
            gp_host::__private::with_call_table(black_box(&mut ctx), "bench", |host, table| {
                // SAFETY: as in `in_process`.
                gp_sdk::__private::execute(unsafe { Tabled::new(host, table) }, body::getset)
                    .is_ok()
            })
        })
    });

    let mut ctx = host_context();
    group.bench_function("getset/in_process", |b| {
        b.iter(|| in_process(black_box(&mut ctx), body::getset))
    });

    // The body as it ran before gp-core 0.1.3, and as it runs under an older host: every read
    // and write a call through the context's vtable.
    let mut ctx = host_context();
    group.bench_function("getset/in_process_vtable", |b| {
        b.iter(|| in_process_vtable(black_box(&mut ctx), body::getset))
    });

    // The floor: the same read and overwrite on a plain map of integers, no trait object.
    let mut map: FxHashMap<String, i64> = FxHashMap::default();
    map.insert("n".to_owned(), 0);
    group.bench_function("getset/fxhashmap", |b| {
        b.iter(|| {
            let map = black_box(&mut map);
            let key = black_box("n");
            let n = *map.get(key).expect("n is set");
            *map.get_mut(key).expect("n is set") = n + 1;
        })
    });

    group.finish();
    drop(library);
    drop(noop_library);
}

/// The typed form (`#[gp_sdk::plugin] mod`) against `getset/executor`, the hand-written entry:
/// the same body behind the generated dispatch by label, and a typed label whose input and
/// output go through serde, on the plugin's side and (`inc/typed_call`) on the host's too; and
/// that label as an `async fn`, ready at once (`inc_async`) or after one wake (`inc_yield`).
fn typed(c: &mut Criterion) {
    let plugins = BenchPlugins::get();
    let typed = plugins.executor(TYPED);
    let labelled = |label: &str| {
        let mut ctx = host_context().with_label(label);
        typed.execute(&mut ctx).expect("bench-typed");
        assert_eq!(n(&ctx), Some(1), "label {label} runs the body");
        ctx
    };
    #[derive(serde::Serialize, serde::Deserialize)]
    struct N {
        n: i64,
    }
    let out: N = typed.call("inc", &N { n: 1 }).expect("bench-typed inc");
    assert_eq!(out.n, 2);

    let mut group = c.benchmark_group("execute");
    group.measurement_time(Duration::from_secs(3));
    let getset = plugins.executor(GETSET);
    let mut ctx = host_context().with_label("getset");
    group.bench_function("getset/executor_labelled", |b| {
        b.iter(|| getset.execute(black_box(&mut ctx)).is_ok())
    });
    let mut ctx = labelled("getset");
    group.bench_function("typed/getset_executor", |b| {
        b.iter(|| typed.execute(black_box(&mut ctx)).is_ok())
    });
    let mut ctx = labelled("inc");
    group.bench_function("typed/inc_executor", |b| {
        b.iter(|| typed.execute(black_box(&mut ctx)).is_ok())
    });
    let mut ctx = labelled("inc_async");
    group.bench_function("typed/inc_async_executor", |b| {
        b.iter(|| typed.execute(black_box(&mut ctx)).is_ok())
    });
    let mut ctx = labelled("inc_yield");
    group.bench_function("typed/inc_yield_executor", |b| {
        b.iter(|| typed.execute(black_box(&mut ctx)).is_ok())
    });
    let mut n = 0;
    group.bench_function("typed/inc_typed_call", |b| {
        b.iter(|| {
            let out: N = typed.call("inc", black_box(&N { n })).expect("inc");
            n = out.n;
        })
    });
    group.finish();
}

criterion_group!(benches, execute, typed);
criterion_main!(benches);
