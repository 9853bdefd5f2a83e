"""imagegen: product images generated, enhanced and personalised by generators trained on the shop's own
catalogue. A reusable Django app; the host names its product model with IMAGEGEN_PRODUCT_MODEL."""
