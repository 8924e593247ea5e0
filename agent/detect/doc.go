// Package detect finds, for one log file, how its records are written: the
// timestamp format (chosen from a sample of the first lines by match count),
// how records span several lines (stack traces, indented continuations,
// MySQL slow-log entries, Docker partial lines), what pkg/levels needs to
// know to find each record's level (Profile.Level: pkg/levels decides, as
// it does for the server) and the host that wrote it. It then turns the
// file's lines into records with a timestamp each, in file order.
//
// Every guess can be overridden per path glob (Overrides), and every guess
// comes with the evidence for it (Profile.Explain), so that a user can trust
// or correct it.
//
// Parsing is done by hand-written scanners, one per format, tried at a
// remembered column first: no regular expression runs per line.
package detect
