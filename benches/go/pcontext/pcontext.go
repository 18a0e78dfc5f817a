// Package pcontext is what the Go host and its plugin share: the seed's PluginContext, a
// context.Context with string-keyed values.
package pcontext

import "context"

// PluginContext is the argument of a plugin's `Execute`.
type PluginContext interface {
	context.Context
	GetValue(key string) interface{}
	SetValue(key string, value interface{})
}

type valueContext struct {
	context.Context
	values map[string]interface{}
}

func (c *valueContext) GetValue(key string) interface{} { return c.values[key] }

func (c *valueContext) SetValue(key string, value interface{}) { c.values[key] = value }

// New is an empty PluginContext over parent.
func New(parent context.Context) PluginContext {
	return &valueContext{Context: parent, values: map[string]interface{}{}}
}
