// The Go counterpart of gp's bench-getset: one get and one set of an integer through the
// context. Built with -buildmode=plugin.
package main

import (
	"errors"

	"gpbench/pcontext"
)

// Execute reads the integer "n" and stores n+1 under "out". (Go boxes an int stored in an
// interface; values below 256 need no allocation, so n stays 41 and "out" 42, as in the
// seed's anchor. gp's plugin overwrites "n" in place, which allocates nothing either.)
func Execute(ctx pcontext.PluginContext) error {
	n, ok := ctx.GetValue("n").(int)
	if !ok {
		return errors.New("n is not an int")
	}
	ctx.SetValue("out", n+1)
	return nil
}

// Noop does nothing: the cost of the call itself.
func Noop(ctx pcontext.PluginContext) error {
	return nil
}
