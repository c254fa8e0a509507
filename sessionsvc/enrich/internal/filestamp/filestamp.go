// Package filestamp tells when a file that the enrichment reloads while
// sessionsvc runs (the GeoIP database, the IP reputation lists) has
// changed: by its modification time and size, and once when it becomes
// unreadable.
package filestamp

import (
	"io/fs"
	"os"
)

// File is the last seen version of one file. The zero value has seen
// nothing yet. Not safe for concurrent use (the reloaders hold a lock).
type File struct {
	mod, size int64 // modification time (UnixNano) and size
	missing   bool  // the last Check could not stat the file
}

// Check stats path and reports whether it changed since the last Check:
// readable with another modification time or size than last time (fi is
// its info), or unreadable for the first time since it was last readable
// (err says why). Unchanged, it returns changed false.
func (f *File) Check(path string) (fi fs.FileInfo, changed bool, err error) {
	fi, err = os.Stat(path)
	if err != nil {
		if f.missing {
			return nil, false, nil
		}
		*f = File{missing: true}
		return nil, true, err
	}
	next := File{mod: fi.ModTime().UnixNano(), size: fi.Size()}
	if next == *f {
		return fi, false, nil
	}
	*f = next
	return fi, true, nil
}
