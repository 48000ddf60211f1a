"""Use cases that take more than one step or more than one collaborator (a store and the bus, an undo);
routes call them, and call a store directly only for what one store call answers."""
