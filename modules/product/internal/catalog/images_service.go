package catalog

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/apperr"
)

var errNoImage = apperr.NotFound("no such image")

// AddImage stores an uploaded image after the product's others (the first
// becomes its primary image). What the bytes are decides, never what the
// upload claims: only PNG, JPEG and WebP are taken.
func (s *Service) AddImage(ctx context.Context, productID string, data []byte) (Image, error) {
	if !isUUID(productID) {
		return Image{}, errNoProduct
	}
	if len(data) == 0 {
		return Image{}, apperr.InvalidField("image", "is empty: send the image's bytes as the body")
	}
	sniffed, err := sniffImage(data)
	if err != nil {
		return Image{}, err
	}
	out := Image{ID: uuid.NewString(), Width: sniffed.Width, Height: sniffed.Height}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, ok, err := lockProduct(tx, productID)
		if err != nil {
			return err
		}
		if !ok {
			return errNoProduct
		}
		n, err := countImages(tx, productID)
		if err != nil {
			return err
		}
		if n >= maxImagesPerProduct {
			return apperr.Conflict(fmt.Sprintf("the product has %d images, the most it keeps; delete one first", maxImagesPerProduct))
		}
		out.Alt = cur.Name
		return insertImage(tx, newImageRow{ID: out.ID, ProductID: productID, ContentType: sniffed.ContentType,
			Width: sniffed.Width, Height: sniffed.Height, Position: n, Data: data})
	})
	if err != nil {
		return Image{}, err
	}
	out.URL = imageURL(productID, out.ID)
	return out, nil
}

// ImageBytes returns an image's bytes and content type. Images of
// inactive products are served too: their ids are random and unlisted to
// shoppers, and the bytes never change, so caches may keep them.
func (s *Service) ImageBytes(ctx context.Context, productID, imageID string) (contentType string, data []byte, err error) {
	if !isUUID(productID) || !isUUID(imageID) {
		return "", nil, errNoImage
	}
	im, ok, err := imageBytes(ctx, s.db, productID, imageID)
	if err != nil {
		return "", nil, err
	}
	if !ok {
		return "", nil, errNoImage
	}
	return im.ContentType, im.Data, nil
}

// ChangeImage sets an image's alt text or moves it among the product's
// images; position 0 makes it the primary one.
func (s *Service) ChangeImage(ctx context.Context, productID, imageID string, ch ImageChange) (Product, error) {
	if !isUUID(productID) || !isUUID(imageID) {
		return Product{}, errNoImage
	}
	if errs := ch.validate(); len(errs) > 0 {
		return Product{}, apperr.Invalid(errs...)
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		pos, err := lockImage(tx, productID, imageID)
		if err != nil {
			return err
		}
		if ch.Alt != nil {
			var alt *string
			if *ch.Alt != "" {
				alt = ch.Alt
			}
			if err := setImageAlt(tx, imageID, alt); err != nil {
				return err
			}
		}
		if ch.Position == nil {
			return nil
		}
		n, err := countImages(tx, productID)
		if err != nil {
			return err
		}
		if *ch.Position >= n {
			return apperr.InvalidField("position", fmt.Sprintf("must be from 0 to %d: the product has %d images", n-1, n))
		}
		return moveImage(tx, productID, imageID, pos, *ch.Position)
	})
	if err != nil {
		return Product{}, err
	}
	return s.Product(ctx, productID, true)
}

// DeleteImage removes an image; the ones after it move up.
func (s *Service) DeleteImage(ctx context.Context, productID, imageID string) error {
	if !isUUID(productID) || !isUUID(imageID) {
		return errNoImage
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		pos, err := lockImage(tx, productID, imageID)
		if err != nil {
			return err
		}
		return deleteImage(tx, productID, imageID, pos)
	})
}

// lockImage takes the product for the rest of tx, so that changes of its
// images take turns, and returns where the image is among them.
func lockImage(tx *gorm.DB, productID, imageID string) (int, error) {
	_, ok, err := lockProduct(tx, productID)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errNoImage
	}
	pos, ok, err := imagePosition(tx, productID, imageID)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errNoImage
	}
	return pos, nil
}
