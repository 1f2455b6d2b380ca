package main

import (
	"github.com/numbergate/numbergate/internal/cli"
)

// newCLI returns the operator commands on the store the configuration
// names (SQLite or PostgreSQL).
func newCLI() *cli.CLI { return cli.New(openStore) }
