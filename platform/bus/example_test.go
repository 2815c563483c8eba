package bus_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/testkit"
)

// OrderPlaced is an event, as a module declares it in its events package:
// a stable, versioned name and a JSON payload.
type OrderPlaced struct {
	OrderID string `json:"order_id"`
	Items   int    `json:"items"`
}

func (OrderPlaced) EventName() string { return "shop.order_placed.v1" }

// A handler, typed by its event, applies it in tx: the transaction of its
// module (acting as the module's role) in which the bus also records that
// this handler applied this message, so the effect happens once however
// often the message is delivered.
func ExampleHandle() {
	ctx := context.Background()
	dbURL, drop := exampleDatabase() // the bus and module "shop", provisioned
	defer drop()

	// The module's own pool, acting as its role: handlers write there.
	pool, err := db.OpenModule(ctx, dbURL, "shop", 4)
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	shop, err := db.Gorm(pool)
	if err != nil {
		panic(err)
	}

	registry := bus.NewRegistry()
	registry.Register(OrderPlaced{})
	b, err := bus.New(ctx, bus.Config{DatabaseURL: dbURL}, registry)
	if err != nil {
		panic(err)
	}
	defer b.Close()

	handled := make(chan string, 1)
	bus.Handle(b, "shop.count_items", bus.Consumer{Module: "shop", DB: shop},
		func(ctx context.Context, tx *gorm.DB, ev OrderPlaced) error {
			if err := tx.Exec(`UPDATE orders SET counted = ? WHERE id = ?`, ev.Items, ev.OrderID).Error; err != nil {
				return fmt.Errorf("count the items of order %s: %w", ev.OrderID, err)
			}
			md, _ := bus.MessageMetadata(ctx)
			select {
			case handled <- fmt.Sprintf("%s: order %s, %d items", md.Event, ev.OrderID, ev.Items):
			default:
			}
			return nil
		})
	if err := b.Start(ctx); err != nil {
		panic(err)
	}

	err = shop.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO orders (id) VALUES ('1001')`).Error; err != nil {
			return err
		}
		return b.Publish(ctx, tx, OrderPlaced{OrderID: "1001", Items: 3})
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(waitFor(handled))
	// Output: shop.order_placed.v1: order 1001, 3 items
}

// Events are published in the caller's transaction, beside the change they
// announce: delivered if it commits, never if it rolls back. The context
// gives them their correlation id, which the handler reads, with the rest
// of the message's metadata, from its own context.
func ExampleBus_Publish() {
	ctx := context.Background()
	dbURL, drop := exampleDatabase() // the bus and module "shop", provisioned
	defer drop()
	pool, err := db.OpenModule(ctx, dbURL, "shop", 4)
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	shop, err := db.Gorm(pool)
	if err != nil {
		panic(err)
	}
	b, err := bus.New(ctx, bus.Config{DatabaseURL: dbURL}, bus.NewRegistry())
	if err != nil {
		panic(err)
	}
	defer b.Close()
	handled := make(chan string, 2)
	bus.Handle(b, "shop.count_items", bus.Consumer{Module: "shop", DB: shop},
		func(ctx context.Context, tx *gorm.DB, ev OrderPlaced) error {
			md, _ := bus.MessageMetadata(ctx)
			select {
			case handled <- fmt.Sprintf("order %s (correlation id %s)", ev.OrderID, md.CorrelationID):
			default:
			}
			return nil
		})
	if err := b.Start(ctx); err != nil {
		panic(err)
	}

	place := func(id string, fail error) error {
		ctx := bus.WithCorrelationID(ctx, "checkout-"+id)
		return shop.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`INSERT INTO orders (id) VALUES (?)`, id).Error; err != nil {
				return err
			}
			if err := b.Publish(ctx, tx, OrderPlaced{OrderID: id, Items: 1}); err != nil {
				return err
			}
			return fail
		})
	}
	// The first order fails after its publish: it rolls back, event and all.
	fmt.Println(place("1001", errors.New("card declined")))
	fmt.Println(place("1002", nil))
	fmt.Println(waitFor(handled))
	// Output:
	// card declined
	// <nil>
	// order 1002 (correlation id checkout-1002)
}

// waitFor returns what a handler reported, or says that none did.
func waitFor(handled <-chan string) string {
	select {
	case s := <-handled:
		return s
	case <-time.After(30 * time.Second):
		return "no handler ran within 30 s"
	}
}

// exampleDatabase creates a database on the server the package's tests
// use (testkit), with module "shop" (its table orders) and the bus
// provisioned, as the shop's start-up provisions them; drop removes it.
func exampleDatabase() (dbURL string, drop func()) {
	ctx := context.Background()
	server, err := testkit.ServerURL()
	if err != nil {
		panic(err)
	}
	admin, err := db.Open(ctx, server, 2)
	if err != nil {
		panic(err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "modshop_example_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		panic(err)
	}
	drop = func() {
		admin, err := db.Open(ctx, server, 1)
		if err == nil {
			_, err = admin.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
			_ = admin.Close()
		}
		if err != nil {
			fmt.Printf("drop database %s: %v\n", name, err) // fails the example: its output differs
		}
	}
	u, err := url.Parse(server)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	dbURL = u.String()

	provision := func() error {
		admin, err := db.Open(ctx, dbURL, 2)
		if err != nil {
			return err
		}
		defer admin.Close()
		if err := db.Provision(ctx, admin, "shop"); err != nil {
			return err
		}
		if err := bus.Provision(ctx, admin, "shop"); err != nil {
			return err
		}
		shop, err := db.OpenModule(ctx, dbURL, "shop", 1) // the table is the module's own
		if err != nil {
			return err
		}
		defer shop.Close()
		_, err = shop.ExecContext(ctx, `CREATE TABLE orders (id text PRIMARY KEY, counted int)`)
		return err
	}
	if err := provision(); err != nil {
		drop()
		panic(err)
	}
	return dbURL, drop
}
