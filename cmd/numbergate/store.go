package main

import (
	"context"
	"fmt"
	"io"

	"github.com/numbergate/numbergate/internal/cmdline"
	"github.com/numbergate/numbergate/internal/config"
	"github.com/numbergate/numbergate/internal/nv"
	"github.com/numbergate/numbergate/internal/postgres"
	"github.com/numbergate/numbergate/internal/sqlite"
)

// openStore opens the store the configuration names, bringing its schema
// up to date: SQLite in data_dir, or PostgreSQL (migrations under an
// advisory lock, so nodes starting together are safe). serve and the
// operator commands share it.
func openStore(ctx context.Context, cfg *config.Config) (nv.Store, error) {
	switch cfg.Store.Driver {
	case config.DriverPostgres:
		st, err := postgres.Open(ctx, postgresOptions(cfg))
		if err != nil {
			return nil, fmt.Errorf("open the PostgreSQL store: %w", err)
		}
		return st, nil
	default:
		st, err := sqlite.Open(ctx, cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("open the store in %s: %w", cfg.DataDir, err)
		}
		return st, nil
	}
}

func postgresOptions(cfg *config.Config) postgres.Options {
	return postgres.Options{
		DSN:              string(cfg.Store.DSN),
		MaxConns:         cfg.Store.MaxConns,
		StatementTimeout: cfg.Store.StatementTimeout,
		ConnMaxLifetime:  cfg.Store.ConnMaxLifetime,
	}
}

// runMigrate is `numbergate migrate --config FILE`: it brings the store's
// schema up to date and exits (serve does the same at start; this lets an
// operator do it alone, before a rolling upgrade).
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := cmdline.New("migrate", "--config FILE", stdout)
	fs.Description = "Brings the store's schema up to date and exits (serve does the same at start,\nunder a lock, so nodes starting together are safe)."
	path := fs.String("config", "", "configuration `FILE` (YAML; see docs/configuration.md)")
	if _, err := fs.Parse(args, 0); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("migrate: --config FILE is required")
	}
	cfg, err := config.LoadEnv(*path, getenv)
	if err != nil {
		return err
	}
	if cfg.Store.Driver != config.DriverPostgres {
		st, err := openStore(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "sqlite store in %s is up to date\n", cfg.DataDir)
		return st.Close()
	}
	applied, err := postgres.Migrate(ctx, postgresOptions(cfg))
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "postgres schema is up to date (version %d)\n", postgres.SchemaVersion())
		return nil
	}
	fmt.Fprintf(stdout, "postgres schema migrated: applied versions %v, now at version %d\n", applied, postgres.SchemaVersion())
	return nil
}
