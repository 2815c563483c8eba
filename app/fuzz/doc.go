// Package fuzz holds the shop's fuzz tests (its files are tests only): the
// search text, the list cursors and the JSON body of every route that
// writes, each sent to a whole running shop. Every answer must be below
// 500, and a refusal must leave the database as it was. The seed corpora
// run with the other tests; `make fuzz` fuzzes each target for a while.
package fuzz
