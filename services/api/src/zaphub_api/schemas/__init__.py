"""REST request and response models, separate Create/Update/Read models per resource."""
