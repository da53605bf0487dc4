// Package events is wpm's event bus: a bounded ring of the host's events,
// numbered, that Server-Sent Events streams read from and resume in
// (Last-Event-ID), and that drops a consumer too slow to keep up rather
// than slowing the host down.
package events
