"""Edge adapters to outside services (HTTP); the domain folders import none of them."""
