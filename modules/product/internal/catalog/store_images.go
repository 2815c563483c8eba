package catalog

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// The product images' part of the store. The JSON of a product lists its
// images without their bytes (selectProducts); only imageBytes reads them.

// imagesJSON is the column selectProducts adds: the product's images in
// order, as JSON, alt NULL standing for the product's name.
const imagesJSON = `
       coalesce((SELECT json_agg(json_build_object('id', im.id, 'alt', coalesce(im.alt, p.name),
                        'width', im.width, 'height', im.height) ORDER BY im.position)
                   FROM product_images im WHERE im.product_id = p.id), '[]')::text AS images`

// storedImage is one image's bytes and type.
type storedImage struct {
	ContentType string
	Data        []byte
}

// imageBytes reads an image of a product; ok is false if there is none.
func imageBytes(ctx context.Context, db *gorm.DB, productID, imageID string) (storedImage, bool, error) {
	var rows []storedImage
	err := db.WithContext(ctx).Raw(`SELECT content_type, data FROM product_images WHERE id = ? AND product_id = ?`,
		imageID, productID).Scan(&rows).Error
	if err != nil {
		return storedImage{}, false, fmt.Errorf("image %s: %w", imageID, err)
	}
	if len(rows) == 0 {
		return storedImage{}, false, nil
	}
	return rows[0], true, nil
}

// countImages counts a product's images in tx; lockProduct taken first
// keeps the count true until tx ends.
func countImages(tx *gorm.DB, productID string) (int, error) {
	var n int
	if err := tx.Raw(`SELECT count(*) FROM product_images WHERE product_id = ?`, productID).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("count images: %w", err)
	}
	return n, nil
}

// newImageRow is an image to add after a product's others.
type newImageRow struct {
	ID, ProductID, ContentType string
	Width, Height, Position    int
	Alt                        *string
	Data                       []byte
}

func insertImage(tx *gorm.DB, im newImageRow) error {
	err := tx.Exec(`INSERT INTO product_images (id, product_id, position, content_type, width, height, alt, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, im.ID, im.ProductID, im.Position, im.ContentType, im.Width, im.Height, im.Alt, im.Data).Error
	if err != nil {
		return fmt.Errorf("insert image: %w", err)
	}
	return nil
}

// imagePosition reads where an image of a product is; ok is false if the
// product has no such image.
func imagePosition(tx *gorm.DB, productID, imageID string) (int, bool, error) {
	var pos []int
	if err := tx.Raw(`SELECT position FROM product_images WHERE id = ? AND product_id = ?`, imageID, productID).Scan(&pos).Error; err != nil {
		return 0, false, fmt.Errorf("image position: %w", err)
	}
	if len(pos) == 0 {
		return 0, false, nil
	}
	return pos[0], true, nil
}

// deleteImage removes an image and closes the gap it leaves, so that the
// positions stay 0..n-1 (the unique constraint is checked at commit).
func deleteImage(tx *gorm.DB, productID, imageID string, pos int) error {
	if err := tx.Exec(`DELETE FROM product_images WHERE id = ?`, imageID).Error; err != nil {
		return fmt.Errorf("delete image: %w", err)
	}
	if err := tx.Exec(`UPDATE product_images SET position = position - 1 WHERE product_id = ? AND position > ?`, productID, pos).Error; err != nil {
		return fmt.Errorf("close the gap of a deleted image: %w", err)
	}
	return nil
}

// moveImage moves an image from position from to position to, shifting
// those between by one.
func moveImage(tx *gorm.DB, productID, imageID string, from, to int) error {
	var err error
	switch {
	case to < from:
		err = tx.Exec(`UPDATE product_images SET position = position + 1 WHERE product_id = ? AND position >= ? AND position < ?`, productID, to, from).Error
	case to > from:
		err = tx.Exec(`UPDATE product_images SET position = position - 1 WHERE product_id = ? AND position > ? AND position <= ?`, productID, from, to).Error
	}
	if err == nil {
		err = tx.Exec(`UPDATE product_images SET position = ? WHERE id = ?`, to, imageID).Error
	}
	if err != nil {
		return fmt.Errorf("move image: %w", err)
	}
	return nil
}

// setImageAlt sets an image's alt text; nil goes back to the product's name.
func setImageAlt(tx *gorm.DB, imageID string, alt *string) error {
	if err := tx.Exec(`UPDATE product_images SET alt = ? WHERE id = ?`, alt, imageID).Error; err != nil {
		return fmt.Errorf("set alt text: %w", err)
	}
	return nil
}
