/*
 * deliverd.h - the outbound delivery daemon's shared state.
 */
#ifndef DELIVERD_H
#define DELIVERD_H

#endif
