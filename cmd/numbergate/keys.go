package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/numbergate/numbergate/internal/authz"
	"github.com/numbergate/numbergate/internal/cmdline"
	"github.com/numbergate/numbergate/internal/config"
)

const keysUsage = `usage: numbergate keys rotate|list --config FILE

  rotate   add a signing key; every node publishes it at once and signs with it
           after store.key_activation_delay (or --delay); the current key stays
           published until no ID token it signed can still be presented
  list     the signing keys and where each stands (next, signing, published, retired)

The pairwise subject secret is not a signing key: it is never published or rotated.
`

// runKeys is `numbergate keys rotate|list`.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	sub, rest, err := cmdline.Subcommand(args, "keys", keysUsage, []string{"rotate", "list"}, stdout)
	if err != nil {
		return err
	}
	fs := cmdline.New("keys "+sub, "--config FILE", stdout)
	path := fs.String("config", "", "configuration `FILE` (YAML; see docs/configuration.md)")
	var delay *time.Duration
	if sub == "rotate" {
		fs.Description = "Adds a signing key that nodes publish at once and sign with after the activation delay."
		delay = fs.Duration("delay", -1, "activation `delay` (default: store.key_activation_delay from the file)")
	}
	if _, err := fs.Parse(rest, 0); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("keys %s: --config FILE is required", sub)
	}
	cfg, err := config.LoadEnv(*path, getenv)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	if sub == "rotate" {
		d := cfg.Store.KeyActivationDelay
		if *delay >= 0 {
			d = *delay
		}
		kid, err := authz.RotateSigningKey(ctx, st, now.Add(d))
		if err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
		fmt.Fprintf(stdout, "added signing key %s: published now, signing from %s\n", kid, now.Add(d).UTC().Format(time.RFC3339))
		return nil
	}
	all, err := st.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys list: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tSIGNS FROM\tPUBLISHED UNTIL")
	for _, k := range authz.KeySchedule(all, now) {
		until := "-"
		if !k.PublishedUntil.IsZero() {
			until = k.PublishedUntil.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Key.ID, k.Key.Algorithm, k.State(), k.SignsFrom.UTC().Format(time.RFC3339), until)
	}
	return tw.Flush()
}
