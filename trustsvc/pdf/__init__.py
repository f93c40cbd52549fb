"""E-licence PDF signing (PAdES; SM2 via GM/T 0010 CMS), visible seal, fast batch path, verification report."""
