"""GradViz's Qt front end: shows what ``gradviz`` computes, never computes gradients itself."""
