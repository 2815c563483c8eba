package orders

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// productCopy is one product as the order module's copy keeps it.
type productCopy struct {
	ID, Name, Price string
	Active          bool
	Version         time.Time
}

// keepProducts writes products into the copy where they are newer than
// what it holds (so a late or repeated event, or an old backfill page,
// changes nothing), and names the lines placed while a product written was
// not yet in the copy. Its parameters are numbered as in insertOrder.
func keepProducts(tx *gorm.DB, ps []productCopy) error {
	ids, names, prices := make([]string, len(ps)), make([]string, len(ps)), make([]string, len(ps))
	actives, versions := make([]bool, len(ps)), make([]time.Time, len(ps))
	for i, p := range ps {
		ids[i], names[i], prices[i], actives[i], versions[i] = p.ID, p.Name, p.Price, p.Active, p.Version
	}
	err := tx.Exec(`
		WITH kept AS (
			INSERT INTO product_copies AS c (id, name, price, active, version)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::numeric[], $4::bool[], $5::timestamptz[])
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, price = excluded.price, active = excluded.active, version = excluded.version
			 WHERE c.version < excluded.version
			RETURNING id, name
		)
		UPDATE order_items i SET name = kept.name FROM kept WHERE i.product_id = kept.id AND i.name IS NULL`,
		ids, names, prices, actives, versions).Error
	if err != nil {
		return fmt.Errorf("keep %d product(s): %w", len(ps), err)
	}
	return nil
}

// customerCopy is one account as the order module's copy keeps it.
type customerCopy struct {
	ID, Username, DisplayName string
	Version                   time.Time
}

// keepCustomers writes accounts into the copy where they are newer than
// what it holds.
func keepCustomers(tx *gorm.DB, cs []customerCopy) error {
	ids, usernames, names := make([]string, len(cs)), make([]string, len(cs)), make([]string, len(cs))
	versions := make([]time.Time, len(cs))
	for i, c := range cs {
		ids[i], usernames[i], names[i], versions[i] = c.ID, c.Username, c.DisplayName, c.Version
	}
	err := tx.Exec(`
		INSERT INTO customer_copies AS c (id, username, display_name, version)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])
		ON CONFLICT (id) DO UPDATE SET username = excluded.username, display_name = excluded.display_name, version = excluded.version
		 WHERE c.version < excluded.version`,
		ids, usernames, names, versions).Error
	if err != nil {
		return fmt.Errorf("keep %d customer(s): %w", len(cs), err)
	}
	return nil
}

// copyTotalTooLarge reports whether lines at the copy's prices come to more
// than an order holds (maxTotal). Products not in the copy count nothing:
// the saga's own check at reservation still stands.
func copyTotalTooLarge(tx *gorm.DB, lines []OrderLine) (bool, error) {
	products, quantities := make([]string, len(lines)), make([]int, len(lines))
	for i, l := range lines {
		products[i], quantities[i] = l.ProductID, l.Quantity
	}
	var tooLarge bool
	err := tx.Raw(`SELECT coalesce(sum(c.price * l.quantity), 0) > $3::numeric
		FROM unnest($1::uuid[], $2::int[]) AS l(product_id, quantity) JOIN product_copies c ON c.id = l.product_id`,
		products, quantities, maxTotal).Scan(&tooLarge).Error
	if err != nil {
		return false, fmt.Errorf("total at the copy's prices: %w", err)
	}
	return tooLarge, nil
}

// customersByID reads the copy's accounts of ids.
func customersByID(ctx context.Context, db *gorm.DB, ids []string) ([]customerCopy, error) {
	var rows []customerCopy
	if err := db.WithContext(ctx).Raw(`SELECT id, username, display_name FROM customer_copies WHERE id IN ?`, ids).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("customers: %w", err)
	}
	return rows, nil
}

// claimBackfill asks anew for a copy's backfill when it is not filled and
// no page of its request came within stall (or it never asked): it gives
// the copy a new request id and returns it; ok is false when there is
// nothing to ask. Of replicas checking at once, one claims.
func claimBackfill(tx *gorm.DB, name string, stall time.Duration) (requestID string, ok bool, err error) {
	var ids []string
	err = tx.Raw(`UPDATE copy_backfills SET request_id = gen_random_uuid(), requested_at = now()
		WHERE copy = ? AND filled_at IS NULL AND (requested_at IS NULL OR requested_at < now() - make_interval(secs => ?))
		RETURNING request_id`, name, stall.Seconds()).Scan(&ids).Error
	if err != nil {
		return "", false, fmt.Errorf("claim the backfill of %s: %w", name, err)
	}
	if len(ids) == 0 {
		return "", false, nil
	}
	return ids[0], true, nil
}

// restartBackfill forgets that a copy was filled and gives it a new
// request id, which it returns.
func restartBackfill(tx *gorm.DB, name string) (string, error) {
	var ids []string
	err := tx.Raw(`UPDATE copy_backfills SET request_id = gen_random_uuid(), requested_at = now(), filled_at = NULL
		WHERE copy = ? RETURNING request_id`, name).Scan(&ids).Error
	if err != nil {
		return "", fmt.Errorf("restart the backfill of %s: %w", name, err)
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("no backfill row for %s", name)
	}
	return ids[0], nil
}

// backfillProgress records a page of a copy's current request: the request
// is alive (requested_at moves on), and with the last page the copy is
// filled. A page of another request changes nothing here.
func backfillProgress(tx *gorm.DB, name, requestID string, last bool) error {
	err := tx.Exec(`UPDATE copy_backfills SET requested_at = now(), filled_at = CASE WHEN ? THEN now() END
		WHERE copy = ? AND request_id = ? AND filled_at IS NULL`, last, name, requestID).Error
	if err != nil {
		return fmt.Errorf("backfill progress of %s: %w", name, err)
	}
	return nil
}

// copyStatusRow is a copy's backfill state and size.
type copyStatusRow struct {
	Copy        string
	RequestID   *string
	RequestedAt *time.Time
	FilledAt    *time.Time
	Rows        int64
}

// copyStatuses reads every copy's backfill state and how many rows it holds.
func copyStatuses(ctx context.Context, db *gorm.DB) ([]copyStatusRow, error) {
	var rows []copyStatusRow
	err := db.WithContext(ctx).Raw(`SELECT b.copy, b.request_id, b.requested_at, b.filled_at,
		CASE b.copy WHEN 'products' THEN (SELECT count(*) FROM product_copies) ELSE (SELECT count(*) FROM customer_copies) END AS rows
		FROM copy_backfills b ORDER BY b.copy`).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("copy statuses: %w", err)
	}
	return rows, nil
}

// lineNames are the names of an order's lines by product id: the name the
// line was placed with, else the product copy's now.
func lineNames(tx *gorm.DB, orderID string) (map[string]string, error) {
	var rows []struct{ ProductID, Name string }
	if err := tx.Raw(`SELECT oi.product_id::text AS product_id, COALESCE(oi.name, pc.name, '') AS name
		FROM order_items oi LEFT JOIN product_copies pc ON pc.id = oi.product_id WHERE oi.order_id = ?`, orderID).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("names of the lines of order %s: %w", orderID, err)
	}
	names := make(map[string]string, len(rows))
	for _, r := range rows {
		names[r.ProductID] = r.Name
	}
	return names, nil
}
