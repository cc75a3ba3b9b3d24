"""Settlement: monthly statements of redeemed channel orders (generated, exported, checked) and their
settlement in cash or as a coupon."""
