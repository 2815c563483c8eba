package catalog

import (
	"strconv"

	"gorm.io/gorm"
)

// Relevance (ADR 0037). A search's results come in two tiers:
//
//  1. products whose name or SKU alone matches the whole search
//     (products.name_search), then
//  2. products that match only with their description as well.
//
// Within a tier, products come by name, then id: the order of
// products_name_idx, so that a page is read from the index (or, for a
// narrow search, from the search's own index and sorted) and the next page
// starts after the cursor's (tier, name, id) without ranking every match.
// What this trades for that: within a tier, how often and how close the
// words occur no longer moves a product up, as ts_rank did.

const (
	tierName        = 1 // the name or SKU matches the whole search
	tierDescription = 2 // only name, SKU and description together match
)

// relevancePage is the SELECT of the ids and tiers of the next Limit+1
// products of a search in relevance order: the rest of tier 1 after the
// cursor, then tier 2. PostgreSQL runs the second branch only when the
// first ends within the page.
//
// A name match is a match of the whole product too unless the search
// excludes a word ("-tea": the description may hold it), so tier 1 checks
// the whole product only then. The test is a constant PostgreSQL folds
// before planning: left in, the planner would take the two matches for
// independent and expect a hundredth of the rows, and rank a mid-frequency
// word by sorting every match instead of walking the name index.
func relevancePage(q listQuery, categoryID string) (string, []any) {
	const (
		tsq       = "websearch_to_tsquery('english', ?)"
		nameMatch = "p.name_search @@ " + tsq
	)
	base, baseArgs := q.filterBut(categoryID)
	branch := func(tier int, match string, matchArgs []any, after *pageCursor) (string, []any) {
		w, a := base+" AND "+match, append(append([]any{}, baseArgs...), matchArgs...)
		if after != nil {
			w += " AND (p.name, p.id) > (?, ?::uuid)"
			a = append(a, after.Name, after.ID)
		}
		return `(SELECT p.id, ` + strconv.Itoa(tier) + ` AS tier FROM products p WHERE ` + w +
			` ORDER BY p.name, p.id LIMIT ?)`, append(a, q.Limit+1)
	}
	var tier1After, tier2After *pageCursor
	if q.After != nil {
		tier1After = q.After
		if q.After.Tier == tierDescription {
			tier2After = q.After
		}
	}
	second, secondArgs := branch(tierDescription, "p.search @@ "+tsq+" AND NOT "+nameMatch, []any{q.Q, q.Q}, tier2After)
	if tier2After != nil {
		return second, secondArgs
	}
	first, firstArgs := branch(tierName, "("+tsq+"::text NOT LIKE '%!%' OR p.search @@ "+tsq+") AND "+nameMatch,
		[]any{q.Q, q.Q, q.Q}, tier1After)
	return first + ` UNION ALL ` + second + ` LIMIT ?`, append(append(firstArgs, secondArgs...), q.Limit+1)
}

// categoryFilter is the WHERE clause, on category_listing (aliased p), of
// the products of a category page.
func categoryFilter(q listQuery, categoryID string) (string, []any) {
	where, args := "p.category_id = ?::uuid", []any{categoryID}
	if !q.WithHidden {
		where += " AND p.active"
	}
	return where, args
}

// categoryPage is the SELECT of the ids of the next Limit+1 products of a
// category by name: one range of category_listing_name_idx (migration
// 0008), however many products the category holds.
func categoryPage(q listQuery, categoryID string) (string, []any) {
	where, args := categoryFilter(q, categoryID)
	if q.After != nil {
		where += " AND (p.name, p.product_id) > (?, ?::uuid)"
		args = append(args, q.After.Name, q.After.ID)
	}
	return `SELECT p.product_id AS id FROM category_listing p WHERE ` + where +
		` ORDER BY p.name, p.product_id LIMIT ?`, append(args, q.Limit+1)
}

// planForTheseValues makes the listings of tx planned for their own
// values: a plan cached for every search (a generic plan, which the
// driver's prepared statements get after five runs) cannot tell a word in
// every product from a rare one, and scanned the whole search index for a
// common word's count (ADR 0037).
func planForTheseValues(tx *gorm.DB) error {
	return tx.Exec(`SET LOCAL plan_cache_mode = force_custom_plan`).Error
}
