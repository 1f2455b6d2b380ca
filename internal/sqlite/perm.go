package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// privateMask holds the permission bits a data directory or database file
// must not have: anything for group or others. The store holds the signing
// keys, client keys and network sessions.
const privateMask fs.FileMode = 0o077

// tighten removes group and other permissions from path (the directory or
// a database file) if it exists and has any. It returns a line describing
// the change ("" when there was none), or an error naming the file, its mode
// and the command that fixes it when the mode cannot be changed (a file
// owned by another user).
func tighten(path string) (string, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	perm := fi.Mode().Perm()
	if perm&privateMask == 0 {
		return "", nil
	}
	want := perm &^ privateMask
	if err := os.Chmod(path, want); err != nil {
		return "", fmt.Errorf("%s is accessible to other users (mode %04o) and could not be restricted to its owner: %w; run chmod %04o %s as its owner", path, perm, err, want, path)
	}
	return fmt.Sprintf("%s: mode %04o -> %04o", path, perm, want), nil
}
