// Benchmarks of Go's plugin package on the work of gp's call benchmarks, run by
// benches/compare-go.sh. GP_GO_PLUGIN names the plugin built from ../plugin.
package host

import (
	"context"
	"os"
	"plugin"
	"testing"
	"time"

	"gpbench/pcontext"
)

type entry = func(pcontext.PluginContext) error

func open(tb testing.TB) *plugin.Plugin {
	p, err := plugin.Open(os.Getenv("GP_GO_PLUGIN"))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func lookup(tb testing.TB, name string) entry {
	sym, err := open(tb).Lookup(name)
	if err != nil {
		tb.Fatal(err)
	}
	f, ok := sym.(entry)
	if !ok {
		tb.Fatalf("%s has type %T", name, sym)
	}
	return f
}

func newContext() pcontext.PluginContext {
	ctx := pcontext.New(context.Background())
	ctx.SetValue("n", 41)
	return ctx
}

func bench(b *testing.B, f entry) {
	ctx := newContext()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if f := ctx.GetValue("out"); f != nil && f != 42 {
		b.Fatalf("out = %v, want 42", f)
	}
}

// The symbol is looked up once, as a gp Executor is: the fair peer of getset/executor.
func BenchmarkGetsetPlugin(b *testing.B) { bench(b, lookup(b, "Execute")) }

func BenchmarkNoopPlugin(b *testing.B) { bench(b, lookup(b, "Noop")) }

// Opening an already open plugin: Go returns the cached one.
func BenchmarkOpenCached(b *testing.B) {
	open(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		open(b)
	}
}

// The first plugin.Open of this process: runs only with -run TestOpenFirst, in a process of
// its own (the script runs it several times and takes the median).
func TestOpenFirst(t *testing.T) {
	if os.Getenv("GP_GO_OPEN_FIRST") == "" {
		t.Skip("set GP_GO_OPEN_FIRST to time the first plugin.Open")
	}
	start := time.Now()
	open(t)
	t.Logf("first-open-ns %d", time.Since(start).Nanoseconds())
}
