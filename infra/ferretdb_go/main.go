// Command casestream-ferretdb runs FerretDB v1 (MongoDB wire protocol) through its embeddable package.
//
// The upstream cmd/ferretdb binary built with `go install` panics at start because generated version
// files are not part of the module zip; the embeddable package does not need them.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27517", "TCP address to listen on")
	handler := flag.String("handler", "postgresql", "backend handler: postgresql or sqlite")
	postgresqlURL := flag.String("postgresql-url", "", "PostgreSQL URL for the postgresql handler")
	sqliteURL := flag.String("sqlite-url", "", "SQLite URI of an existing directory (file:DIR/) for the sqlite handler")
	debug := flag.Bool("debug", false, "log at debug level")
	flag.Parse()

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if err := run(logger, *listen, *handler, *postgresqlURL, *sqliteURL); err != nil {
		logger.Error("ferretdb failed", "error", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger, listen, handler, postgresqlURL, sqliteURL string) error {
	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: listen},
		Logger:   logger,
		Handler:  handler,
	}
	switch handler {
	case "postgresql":
		if postgresqlURL == "" {
			return fmt.Errorf("-postgresql-url is required for the postgresql handler")
		}
		cfg.PostgreSQLURL = postgresqlURL
	case "sqlite":
		if sqliteURL == "" {
			return fmt.Errorf("-sqlite-url is required for the sqlite handler")
		}
		cfg.SQLiteURL = sqliteURL
	default:
		return fmt.Errorf("unknown handler %q (want postgresql or sqlite)", handler)
	}

	// SIGTERM/SIGINT cancel the context; Run then closes the listener and the backend before returning.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	f, err := ferretdb.New(cfg)
	if err != nil {
		return err
	}
	logger.Info("ferretdb listening", "uri", f.MongoDBURI(), "handler", handler)

	if err := f.Run(ctx); err != nil {
		return err
	}
	logger.Info("ferretdb stopped")
	return nil
}
