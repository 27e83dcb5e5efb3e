package main

// The plugin side of the binary. It is not a driver: it exists so that the
// binary links, and its start-up initialises, the same kind of dependency
// set as the official driver (go-plugin serving gRPC with the health and
// reflection services, hclog, protobuf, a task-config schema in HCL, plugin
// config in msgpack), which is what the shim path pays for at every launch.
// Run without Nomad's handshake cookie it prints go-plugin's own message and
// exits 1, like any Nomad plugin.

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-msgpack/codec"
	"github.com/hashicorp/go-multierror"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-uuid"
	"github.com/hashicorp/go-version"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// taskSchema is the task config's shape, parsed at start-up the way a
// Nomad driver turns its hclspec into a decoder.
const taskSchema = `
command         = "string"
args            = "list(string)"
unveil_paths    = "list(string)"
unveil_defaults = "bool"
oom_score_adj   = "number"
`

// PluginConfig is the plugin's msgpack-encoded configuration.
type PluginConfig struct {
	UnveilPaths    []string `codec:"unveil_paths"`
	UnveilDefaults bool     `codec:"unveil_defaults"`
}

func decodePluginConfig(b []byte) (PluginConfig, error) {
	var c PluginConfig
	err := codec.NewDecoder(bytes.NewReader(b), &codec.MsgpackHandle{}).Decode(&c)
	return c, err
}

type driverPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	logger hclog.Logger
}

func (p *driverPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	hs := health.NewServer()
	hs.SetServingStatus("plugin", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	p.logger.Debug("driver services registered")
	return nil
}

func (p *driverPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, fmt.Errorf("client side not implemented: this binary only serves")
}

// pluginVersion and the Nomad versions it accepts, checked at start-up as
// Nomad plugins check the agent's version.
const (
	pluginVersion     = "0.1.0"
	nomadVersionRange = ">= 1.9.0"
)

func driverMain() int {
	logger := hclog.New(&hclog.LoggerOptions{Name: "go-shim", Level: hclog.Debug, JSONFormat: true, Output: os.Stderr})
	var errs *multierror.Error
	if _, diags := hclsyntax.ParseConfig([]byte(taskSchema), "schema.hcl", hcl.InitialPos); diags.HasErrors() {
		errs = multierror.Append(errs, fmt.Errorf("task schema: %s", diags.Error()))
	}
	if _, err := version.NewVersion(pluginVersion); err != nil {
		errs = multierror.Append(errs, err)
	}
	if _, err := version.NewConstraint(nomadVersionRange); err != nil {
		errs = multierror.Append(errs, err)
	}
	if cfg := os.Getenv("EXEC2_GOSHIM_CONFIG"); cfg != "" {
		c, err := decodePluginConfig([]byte(cfg))
		if err != nil {
			errs = multierror.Append(errs, fmt.Errorf("plugin config: %w", err))
		}
		logger.Debug("plugin config", "unveil_paths", c.UnveilPaths)
	}
	if err := errs.ErrorOrNil(); err != nil {
		logger.Error("start-up", "error", err)
		return 1
	}
	instance, err := uuid.GenerateUUID()
	if err != nil {
		logger.Error("instance id", "error", err)
		return 1
	}
	logger = logger.With("instance", instance)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  2,
			MagicCookieKey:   "NOMAD_PLUGIN_MAGIC_COOKIE",
			MagicCookieValue: "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255",
		},
		Plugins:    plugin.PluginSet{"driver": &driverPlugin{logger: logger}},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     logger,
	})
	return 0
}
